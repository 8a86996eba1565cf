/**
 * Rendering: tool definitions into the system prompt, calls back into tags, tool results and whole OpenClaw
 * contexts into kernel chat messages. Total functions: odd runtime values give odd text, never an exception.
 *
 * @internal
 */
import type { ChatMessage, Context, ToolCallInput, ToolDefinition, ToolResultInput } from "../../ToolTags.js"
import { isRecord } from "./values.js"

const escapeChar = (c: string): string => c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&quot;"

/** `&` and `<` as entities: what the parser decodes back. @internal */
export const escapeText = (s: string): string => s.replace(/[&<]/g, escapeChar)

/** `&`, `<` and `"` as entities, for a double-quoted attribute. @internal */
export const escapeAttr = (s: string): string => s.replace(/[&<"]/g, escapeChar)

/** `f()`, or `fallback` if it throws (cycles, BigInt, getters that throw). */
const attempt = <A>(f: () => A, fallback: A): A => {
  try {
    return f()
  } catch {
    return fallback
  }
}

// `JSON.stringify` gives undefined for functions and symbols, despite its declared type.
const safeJson = (v: unknown): string | undefined => attempt(() => JSON.stringify(v) as string | undefined, undefined)
const safeString = (v: unknown): string => attempt(() => String(v), "")

/**
 * A value as parameter text: strings as they are, objects and arrays as JSON, other scalars as `String(v)`.
 * A value with a line break is written between newlines (which the parser strips), and a `\r` just before the
 * closing newline is written `&#13;` so that the parser does not take it for half of a `\r\n`.
 */
const renderValue = (v: unknown): string | undefined => {
  let s: string
  if (v === undefined || typeof v === "function" || typeof v === "symbol") return undefined
  if (typeof v === "string") s = v
  else if (v === null) s = "null"
  else if (typeof v === "object") s = safeJson(v) ?? safeString(v)
  else s = safeString(v)
  let t = escapeText(s)
  if (s.indexOf("\n") === -1) return t
  if (t.charCodeAt(t.length - 1) === 13) t = t.slice(0, -1) + "&#13;"
  return "\n" + t + "\n"
}

const renderInvoke = (call: ToolCallInput): string => {
  if (!isRecord(call)) return ""
  let out = `<invoke name="${escapeAttr(safeString(call.name))}">\n`
  const args: unknown = call.arguments
  if (isRecord(args)) {
    for (const key of Object.keys(args)) {
      const value = renderValue(args[key])
      if (value !== undefined) out += `<parameter name="${escapeAttr(key)}">${value}</parameter>\n`
    }
  }
  return out + "</invoke>\n"
}

/** @internal */
export const renderToolCalls = (calls: ReadonlyArray<ToolCallInput>): string => {
  let out = "<function_calls>\n"
  if (Array.isArray(calls)) for (const call of calls) out += renderInvoke(call)
  return out + "</function_calls>"
}

const EMPTY_SCHEMA = "{\"type\":\"object\",\"properties\":{}}"

const renderTool = (tool: ToolDefinition): string => {
  const json = tool.parameters === undefined ? EMPTY_SCHEMA : safeJson(tool.parameters) ?? EMPTY_SCHEMA
  const description = typeof tool.description === "string" ? tool.description : ""
  return `<tool name="${escapeAttr(safeString(tool.name))}">\n` +
    `<description>${escapeText(description)}</description>\n` +
    // Inside JSON a `<` only occurs in strings, where `\u003c` means the same: no tag can appear in it.
    `<parameters>${json.replace(/</g, "\\u003c")}</parameters>\n` +
    `</tool>\n`
}

const INSTRUCTIONS = `## Tools

You can call the tools listed at the end of this section. To call tools, write a <function_calls> block in your reply:

<function_calls>
<invoke name="TOOL_NAME">
<parameter name="PARAMETER_NAME">value</parameter>
<parameter name="OTHER_PARAMETER">value</parameter>
</invoke>
</function_calls>

How to write calls:
- Use only the tool names listed below, and the parameter names of each tool's JSON Schema.
- One <invoke> per call; one block may hold several calls. A call without parameters is <invoke name="TOOL_NAME"/>.
- Write strings, numbers and booleans as plain text: <parameter name="count">3</parameter>. Write objects and arrays as JSON: <parameter name="paths">["a.txt", "b.txt"]</parameter>.
- Inside a value write & as &amp; and < as &lt;, or wrap the whole value in <![CDATA[ and ]]>. A value must never contain </parameter>, </invoke> or </function_calls> as raw text.
- A value may start on the line after its opening tag and end on the line before its closing tag: that one newline on each side is not part of the value.
- Markup inside Markdown code (\`\`\` fences or \`inline code\`) is shown, not run: never put a call there.
- After </function_calls>, stop writing and wait. The results come back in the next message as:
<function_results>
<result tool_call_id="ID" name="TOOL_NAME">
result text
</result>
</function_results>
- If no tool is needed, answer without a <function_calls> block.
`

/** @internal */
export const renderToolsPrompt = (tools: ReadonlyArray<ToolDefinition>): string => {
  let out = INSTRUCTIONS + "\n<tools>\n"
  if (Array.isArray(tools)) {
    for (const tool of tools) if (typeof tool === "object" && tool !== null) out += renderTool(tool)
  }
  return out + "</tools>"
}

const partsText = (content: unknown, separator: string): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  const out: Array<string> = []
  for (const part of content as ReadonlyArray<unknown>) {
    if (!isRecord(part)) continue
    if (part["type"] === "text" && typeof part["text"] === "string") out.push(part["text"])
    else if (part["type"] === "image") {
      // The kernel takes text only: say that an image was there rather than drop it silently.
      out.push(typeof part["mimeType"] === "string" ? `[image: ${part["mimeType"]}]` : "[image]")
    }
  }
  return out.join(separator)
}

/** @internal */
export const renderToolResults = (results: ReadonlyArray<ToolResultInput>): string => {
  let out = "<function_results>\n"
  for (const r of Array.isArray(results) ? results : []) {
    if (!isRecord(r)) continue
    const error = r.isError === true ? " error=\"true\"" : ""
    out += `<result tool_call_id="${escapeAttr(safeString(r.toolCallId))}" name="${
      escapeAttr(safeString(r.toolName))
    }"${error}>\n${escapeText(partsText(r.content, "\n"))}\n</result>\n`
  }
  return out + "</function_results>"
}

const renderAssistant = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  let out = ""
  let calls: Array<ToolCallInput> = []
  const flush = () => {
    if (calls.length === 0) return
    if (out.length > 0 && !out.endsWith("\n")) out += "\n"
    out += renderToolCalls(calls)
    calls = []
  }
  for (const part of content as ReadonlyArray<unknown>) {
    if (!isRecord(part)) continue
    if (part["type"] === "toolCall" && typeof part["name"] === "string") {
      calls.push({ name: part["name"], arguments: isRecord(part["arguments"]) ? part["arguments"] : {} })
    } else if (part["type"] === "text" && typeof part["text"] === "string") {
      flush()
      if (out.endsWith("</function_calls>") && part["text"].length > 0 && !part["text"].startsWith("\n")) {
        out += "\n"
      }
      out += part["text"]
    }
    // Thinking parts are the model's own scratch work: not sent back.
  }
  flush()
  return out
}

/** @internal */
export const renderContext = (context: Context): Array<ChatMessage> => {
  const out: Array<ChatMessage> = []
  const ctx: unknown = context
  if (!isRecord(ctx)) return out
  const tools = Array.isArray(ctx["tools"]) ? ctx["tools"] as ReadonlyArray<ToolDefinition> : []
  const system = [
    typeof ctx["systemPrompt"] === "string" ? ctx["systemPrompt"] : "",
    tools.length > 0 ? renderToolsPrompt(tools) : ""
  ].filter((s) => s.length > 0).join("\n\n")
  if (system.length > 0) out.push({ role: "system", content: system })
  const messages = Array.isArray(ctx["messages"]) ? ctx["messages"] as ReadonlyArray<unknown> : []
  let results: Array<ToolResultInput> = []
  const flushResults = () => {
    if (results.length === 0) return
    out.push({ role: "user", content: renderToolResults(results) })
    results = []
  }
  for (const m of messages) {
    if (!isRecord(m)) continue
    const role = m["role"]
    if (role === "toolResult") {
      results.push({
        toolCallId: typeof m["toolCallId"] === "string" ? m["toolCallId"] : "",
        toolName: typeof m["toolName"] === "string" ? m["toolName"] : "",
        content: Array.isArray(m["content"]) ? m["content"] as ToolResultInput["content"] : [],
        isError: m["isError"] === true
      })
      continue
    }
    flushResults()
    if (role === "user") {
      const text = partsText(m["content"], "\n")
      if (text.length > 0) out.push({ role: "user", content: text })
    } else if (role === "assistant") {
      const text = renderAssistant(m["content"])
      if (text.length > 0) out.push({ role: "assistant", content: text })
    }
  }
  flushResults()
  return out
}
