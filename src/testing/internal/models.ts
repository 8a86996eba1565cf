/**
 * The reference kernel's deterministic models. They read the conversation as a real model would: the tools
 * offered in the system prompt (ToolTags' `<tools>` section), the last user message, and tool results.
 */
import type { Message } from "../../Backend.js"

/** A chat message as the server receives it. */
export type ChatMessage = Message

/** A tool as the OpenAI wire carries it (`{"type":"function","function":{…}}`). */
export interface NativeTool {
  readonly type: "function"
  readonly function: { readonly name: string; readonly description?: string | undefined; readonly parameters?: unknown }
}

/** A model's reply: text, or native tool calls (only when the request carried native tools). */
export interface ModelReply {
  readonly text: string | null
  readonly toolCalls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly parameters: Record<string, unknown> }>
  /**
   * The model's reasoning before its reply: `reasoning_content` deltas on `/v1`, a `<think>` block before the
   * text on `/query`.
   */
  readonly reasoning?: string | undefined
}

interface OfferedTool {
  readonly name: string
  readonly schema: { readonly properties?: Record<string, { readonly type?: unknown }>; readonly required?: ReadonlyArray<string> }
}

const decodeEntities = (s: string): string =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"").replace(/&#39;|&apos;/g, "'").replace(/&amp;/g, "&")

const escapeValue = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/**
 * What the user said this turn: the user (and tool) messages after the last assistant message. Hosts append
 * context of their own (OpenClaw adds an internal-context user message), so the first one is the request.
 */
const sinceAssistant = (messages: ReadonlyArray<ChatMessage>): ReadonlyArray<ChatMessage> => {
  let i = messages.length
  while (i > 0 && messages[i - 1]?.role !== "assistant") i--
  return messages.slice(i).filter((m) => m.role === "user" || m.role === "tool")
}

const lastUser = (messages: ReadonlyArray<ChatMessage>): string =>
  sinceAssistant(messages).find((m) => m.role === "user")?.content ?? ""

/** Tools offered in the system prompt (`<tool name="…">…<parameters>{json}</parameters>`) or natively. */
const offeredTools = (messages: ReadonlyArray<ChatMessage>, native: ReadonlyArray<NativeTool>): ReadonlyArray<OfferedTool> => {
  if (native.length > 0) {
    return native.map((t) => ({ name: t.function.name, schema: (t.function.parameters ?? {}) as OfferedTool["schema"] }))
  }
  const system = messages.filter((m) => m.role === "system").map((m) => m.content ?? "").join("\n")
  const tools: Array<OfferedTool> = []
  for (const match of system.matchAll(/<tool name="([^"]+)">([\s\S]*?)<\/tool>/g)) {
    const params = /<parameters>([\s\S]*?)<\/parameters>/.exec(match[2] ?? "")
    let schema: OfferedTool["schema"] = {}
    try {
      schema = params?.[1] ? (JSON.parse(params[1]) as OfferedTool["schema"]) : {}
    } catch {
      schema = {}
    }
    tools.push({ name: decodeEntities(match[1] ?? ""), schema })
  }
  return tools
}

/** Arguments for `tool` read from the request text: `key=value` / `key: value`, else a path-like token. */
const argumentsFor = (tool: OfferedTool, text: string): Record<string, unknown> => {
  const args: Record<string, unknown> = {}
  const properties = tool.schema.properties ?? {}
  for (const key of Object.keys(properties)) {
    const m = new RegExp(`\\b${key.replace(/[^\w]/g, "")}\\s*[=:]\\s*("([^"]*)"|(\\S+))`).exec(text)
    if (m) {
      const raw = m[2] ?? m[3] ?? ""
      const type = properties[key]?.type
      args[key] = type === "integer" || type === "number" ? Number(raw) : type === "boolean" ? raw === "true" : raw
    }
  }
  const firstString = (tool.schema.required ?? Object.keys(properties)).find(
    (k) => properties[k]?.type === undefined || properties[k]?.type === "string"
  )
  if (firstString !== undefined && args[firstString] === undefined) {
    const path = /(?:^|\s)([\w./~-]*\w\.\w+|\/[\w./-]+)(?=[\s.,;:!?)]*(?:\s|$))/.exec(text)
    args[firstString] = path?.[1] ?? text.trim()
  }
  return args
}

const renderCall = (name: string, args: Record<string, unknown>): string =>
  [
    "<function_calls>",
    `<invoke name="${escapeValue(name)}">`,
    ...Object.entries(args).map(([k, v]) =>
      `<parameter name="${escapeValue(k)}">${escapeValue(typeof v === "string" ? v : JSON.stringify(v))}</parameter>`
    ),
    "</invoke>",
    "</function_calls>"
  ].join("\n")

let nativeIds = 0

/** A model that echoes the last user message. */
export const echo = (messages: ReadonlyArray<ChatMessage>): ModelReply => ({ text: lastUser(messages), toolCalls: [] })

/** A reasoning model: it thinks aloud about the last user message, then echoes it. */
export const thinker = (messages: ReadonlyArray<ChatMessage>): ModelReply => {
  const said = lastUser(messages)
  return { reasoning: `The user wrote ${JSON.stringify(said)}; I will repeat it.`, text: said, toolCalls: [] }
}

/**
 * A deterministic tool-using model: when tools are offered and the last user message names one, it calls it
 * (as a `<function_calls>` block, or natively when native tools were sent); once tool results are in the
 * conversation it answers in text, quoting them.
 */
export const toolUser = (messages: ReadonlyArray<ChatMessage>, native: ReadonlyArray<NativeTool>): ModelReply => {
  const results = sinceAssistant(messages).flatMap((m) =>
    m.role === "tool"
      ? [m.content ?? ""]
      : [...(m.content ?? "").matchAll(/<result\b[^>]*>([\s\S]*?)<\/result>/g)].map((r) => decodeEntities(r[1] ?? "").trim())
  )
  if (results.length > 0) {
    return { text: `The tool returned:\n${results.join("\n")}`, toolCalls: [] }
  }
  const text = lastUser(messages)
  const tools = offeredTools(messages, native)
  const chosen = tools
    .map((tool) => ({ tool, at: text.search(new RegExp(`\\b${tool.name.replace(/[^\w-]/g, "\\$&")}\\b`)) }))
    .filter((c) => c.at >= 0)
    .sort((a, b) => a.at - b.at)[0]?.tool
  if (chosen === undefined) {
    return { text: tools.length > 0 ? `No tool needed. You said: ${text}` : `You said: ${text}`, toolCalls: [] }
  }
  const args = argumentsFor(chosen, text)
  return native.length > 0
    ? { text: null, toolCalls: [{ id: `call${++nativeIds}`, name: chosen.name, parameters: args }] }
    : { text: `I'll use the ${chosen.name} tool.\n${renderCall(chosen.name, args)}`, toolCalls: [] }
}
