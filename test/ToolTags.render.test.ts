import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import type * as Backend from "../src/Backend.js"
import type { ChatMessage, Context } from "../src/ToolTags.js"
import * as ToolTags from "../src/ToolTags.js"
import { calls, callsOf, counter, feed, collect, textOf, tools } from "./ToolTags.arbitraries.js"

/** The `<tools>` section read back the way a simulated model (the reference kernel) reads it. */
const readTools = (prompt: string) =>
  [...prompt.matchAll(/<tool name="([^"]*)">\n<description>([^<]*)<\/description>\n<parameters>([^<]*)<\/parameters>\n<\/tool>/g)]
    .map(([, name, description, parameters]) => ({
      name: name!.replace(/&quot;/g, "\"").replace(/&lt;/g, "<").replace(/&amp;/g, "&"),
      description: description!.replace(/&lt;/g, "<").replace(/&amp;/g, "&"),
      parameters: JSON.parse(parameters!) as unknown
    }))

describe("ToolTags rendering", () => {
  it.prop("case 25: parse(renderToolCalls(calls)) == calls, values drawn from the tools' schemas", [calls], ([cs]) => {
    const text = ToolTags.renderToolCalls(cs)
    const r = ToolTags.parse(text, { tools })
    expect(r.invalid).toEqual([])
    expect(r.parts.every((p) => p._tag === "ToolCall")).toBe(true)
    expect(callsOf(r)).toEqual(cs)
    // The same through the streaming parser, one character at a time.
    expect(callsOf(collect(feed(text.split(""), { tools, idGenerator: counter() })))).toEqual(cs)
  }, { fastCheck: { numRuns: 500 } })

  it.prop(
    "case 25: any string survives the round trip, lone surrogates, CR and entities included",
    [fc.string({ unit: "binary" }), fc.string({ unit: "binary" })],
    ([path, content]) => {
      const r = ToolTags.parse(ToolTags.renderToolCalls([{ name: "write", arguments: { path, content } }]), { tools })
      expect(callsOf(r)).toEqual([{ name: "write", arguments: { path, content } }])
    },
    { fastCheck: { numRuns: 500 } }
  )

  it("case 25: the renderer escapes & and <, and writes multi-line values between newlines", () => {
    const text = ToolTags.renderToolCalls([
      { name: "write", arguments: { path: "a&b<c>", content: "line 1\nline 2\r" } },
      { name: "exec", arguments: { env: { K: "<v>" }, timeout: 2.5, background: false, skipped: undefined } }
    ])
    expect(text).toBe([
      "<function_calls>",
      "<invoke name=\"write\">",
      "<parameter name=\"path\">a&amp;b&lt;c></parameter>",
      "<parameter name=\"content\">",
      "line 1",
      "line 2&#13;",
      "</parameter>",
      "</invoke>",
      "<invoke name=\"exec\">",
      "<parameter name=\"env\">{\"K\":\"&lt;v>\"}</parameter>",
      "<parameter name=\"timeout\">2.5</parameter>",
      "<parameter name=\"background\">false</parameter>",
      "</invoke>",
      "</function_calls>"
    ].join("\n"))
  })

  it("the tools section has the machine-readable shape, with no raw < inside the JSON", () => {
    const defs = [
      ...tools,
      {
        name: "html",
        description: "Render <b>bold</b> & more",
        parameters: { type: "object", properties: { tag: { type: "string", description: "e.g. </tool> or <x>" } } }
      }
    ]
    const prompt = ToolTags.renderToolsPrompt(defs)
    // Exactly one `<tools>` section, so a reader can find it by its tag alone.
    expect(prompt.split("<tools>")).toHaveLength(2)
    const section = prompt.slice(prompt.indexOf("<tools>\n"))
    expect(section.startsWith("<tools>\n<tool name=\"read\">\n<description>")).toBe(true)
    expect(section.endsWith("</tool>\n</tools>")).toBe(true)
    const read = readTools(section)
    expect(read.map((t) => t.name)).toEqual(defs.map((t) => t.name))
    expect(read.map((t) => t.description)).toEqual(defs.map((t) => t.description ?? ""))
    expect(read.map((t) => t.parameters)).toEqual(
      defs.map((t) => t.parameters ?? { type: "object", properties: {} })
    )
    // The instructions say how to call, how to write values, how to escape, and to stop after the block.
    for (const phrase of ["<function_calls>", "<invoke name=\"TOOL_NAME\">", "as JSON", "&amp;", "&lt;", "CDATA", "stop", "<function_results>"]) {
      expect(prompt).toContain(phrase)
    }
  })

  it("the example call in the instructions parses as a call", () => {
    const prompt = ToolTags.renderToolsPrompt(tools)
    const example = prompt.slice(prompt.indexOf("<function_calls>"), prompt.indexOf("</function_calls>") + 17)
    expect(callsOf(ToolTags.parse(example))).toEqual([
      { name: "TOOL_NAME", arguments: { PARAMETER_NAME: "value", OTHER_PARAMETER: "value" } }
    ])
  })

  it("tool results: one <result> per result, linked by id and name, errors flagged, images as placeholders", () => {
    const text = ToolTags.renderToolResults([
      { toolCallId: "call1", toolName: "ls", content: [{ type: "text", text: "a\nb" }] },
      {
        toolCallId: "call2",
        toolName: "read",
        content: [{ type: "text", text: "<html> & </result>" }, { type: "image", data: "AAAA", mimeType: "image/png" }],
        isError: true
      }
    ])
    expect(text).toBe([
      "<function_results>",
      "<result tool_call_id=\"call1\" name=\"ls\">",
      "a",
      "b",
      "</result>",
      "<result tool_call_id=\"call2\" name=\"read\" error=\"true\">",
      "&lt;html> &amp; &lt;/result>",
      "[image: image/png]",
      "</result>",
      "</function_results>"
    ].join("\n"))
  })

  it("an OpenClaw context becomes kernel chat messages", () => {
    const context: Context = {
      systemPrompt: "You are helpful.",
      tools,
      messages: [
        { role: "user", content: "What is in /tmp?" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "private" },
            { type: "text", text: "Let me look." },
            { type: "toolCall", id: "call1", name: "ls", arguments: {} },
            { type: "toolCall", id: "call2", name: "read", arguments: { path: "/tmp/a", limit: 10 } }
          ]
        },
        { role: "toolResult", toolCallId: "call1", toolName: "ls", content: [{ type: "text", text: "a" }], isError: false },
        { role: "toolResult", toolCallId: "call2", toolName: "read", content: [{ type: "text", text: "hi" }], isError: true },
        { role: "assistant", content: [{ type: "text", text: "Done: a says hi." }] },
        { role: "user", content: [{ type: "text", text: "thanks" }, { type: "image", data: "", mimeType: "image/jpeg" }] },
        { role: "assistant", content: [] }
      ]
    }
    const out = ToolTags.renderContext(context)
    // What a backend is sent: the rendered messages are backend messages as they are.
    const sent: ReadonlyArray<Backend.Message> = out
    expect(sent).toBe(out)
    expect(out.map((m) => m.role)).toEqual(["system", "user", "assistant", "user", "assistant", "user"])
    expect(out[0]!.content).toBe("You are helpful.\n\n" + ToolTags.renderToolsPrompt(tools))
    expect(out[1]).toEqual({ role: "user", content: "What is in /tmp?" })
    expect(out[2]!.content).toBe(
      "Let me look.\n" + ToolTags.renderToolCalls([
        { name: "ls", arguments: {} },
        { name: "read", arguments: { path: "/tmp/a", limit: 10 } }
      ])
    )
    const back = ToolTags.parse(out[2]!.content, { tools })
    expect(textOf(back)).toBe("Let me look.\n")
    expect(callsOf(back)).toEqual([{ name: "ls", arguments: {} }, { name: "read", arguments: { path: "/tmp/a", limit: 10 } }])
    expect(out[3]!.content).toBe(ToolTags.renderToolResults([
      { toolCallId: "call1", toolName: "ls", content: [{ type: "text", text: "a" }], isError: false },
      { toolCallId: "call2", toolName: "read", content: [{ type: "text", text: "hi" }], isError: true }
    ]))
    expect(out[5]).toEqual({ role: "user", content: "thanks\n[image: image/jpeg]" })
    expect(ToolTags.renderContext({ messages: [] })).toEqual([])
  })

  it("OpenClaw's own shapes (TypeBox schemas, extra fields, mutable arrays) are accepted as they are", () => {
    // Mirrors of @openclaw/ai's declarations, as interfaces (so no implicit index signatures).
    interface TSchema {
      [Symbol.iterator]?: never
      readonly $id?: string
      type?: string
      properties?: unknown
    }
    interface Tool {
      name: string
      description: string
      parameters: TSchema
    }
    interface OcText {
      type: "text"
      text: string
      textSignature?: string
    }
    interface OcImage {
      type: "image"
      data: string
      mimeType: string
    }
    interface OcThinking {
      type: "thinking"
      thinking: string
      thinkingSignature?: string
      redacted?: boolean
    }
    interface OcToolCall {
      type: "toolCall"
      id: string
      name: string
      arguments: Record<string, any>
      thoughtSignature?: string
    }
    interface OcUser {
      role: "user"
      content: string | Array<OcText | OcImage>
      timestamp: number
    }
    interface OcAssistant {
      role: "assistant"
      content: Array<OcText | OcThinking | OcToolCall>
      api: string
      provider: string
      model: string
      stopReason: "stop" | "length" | "toolUse" | "error" | "aborted"
      timestamp: number
    }
    interface OcToolResult {
      role: "toolResult"
      toolCallId: string
      toolName: string
      content: Array<OcText | OcImage>
      details?: unknown
      isError: boolean
      timestamp: number
    }
    interface OcContext {
      systemPrompt?: string
      messages: Array<OcUser | OcAssistant | OcToolResult>
      tools?: Array<Tool>
    }
    const oc: OcContext = {
      messages: [
        { role: "user", content: "hi", timestamp: 1 },
        {
          role: "assistant",
          content: [{ type: "toolCall", id: "callx1", name: "ls", arguments: {} }],
          api: "openai-completions",
          provider: "aios",
          model: "m",
          stopReason: "toolUse",
          timestamp: 2
        },
        { role: "toolResult", toolCallId: "callx1", toolName: "ls", content: [], isError: false, timestamp: 3 }
      ],
      tools: [{ name: "ls", description: "list", parameters: { type: "object", properties: {} } }]
    }
    const context: Context = oc // the point of this test: it type-checks
    const out: Array<ChatMessage> = ToolTags.renderContext(context)
    expect(out.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"])
    expect(out[3]!.content).toContain("tool_call_id=\"callx1\" name=\"ls\"")
  })

  it.prop("renderers never throw, whatever they are given", [fc.anything(), fc.anything()], ([a, b]) => {
    expect(() => ToolTags.renderContext(a as Context)).not.toThrow()
    expect(() => ToolTags.renderContext({ messages: [a, b], tools: [a] } as unknown as Context)).not.toThrow()
    expect(() => ToolTags.renderToolCalls([{ name: "x", arguments: { a, b } }, a] as never)).not.toThrow()
    expect(() => ToolTags.renderToolsPrompt([a, { name: "t", parameters: b }] as never)).not.toThrow()
    expect(() => ToolTags.renderToolResults([a, { toolCallId: a, toolName: b, content: [a] }] as never)).not.toThrow()
  })

  it("renderers survive cycles, BigInt and getters that throw", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const hostile = Object.defineProperty({}, "boom", {
      enumerable: true,
      get() {
        throw new Error("no")
      }
    })
    expect(() => ToolTags.renderToolCalls([{ name: "x", arguments: { cyclic, big: 10n, hostile } }])).not.toThrow()
    expect(() => ToolTags.renderToolsPrompt([{ name: "t", parameters: cyclic }])).not.toThrow()
  })

  it("ids: sanitizeId keeps alphanumerics; generators never repeat and never collide in practice", () => {
    expect(ToolTags.sanitizeId("call_x-1")).toBe("callx1")
    expect(ToolTags.isValidId("callx1")).toBe(true)
    expect(ToolTags.isValidId("call_x")).toBe(false)
    expect(ToolTags.isValidId("")).toBe(false)
    const a = ToolTags.makeIdGenerator()
    const b = ToolTags.makeIdGenerator()
    const ids = Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? a() : b()))
    expect(new Set(ids).size).toBe(1000)
    for (const id of ids) expect(ToolTags.isValidId(id)).toBe(true)
    expect(ToolTags.makeIdGenerator("run_7")()).toBe("run71")
  })
})
