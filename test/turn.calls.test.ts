import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import type * as ToolTags from "../src/ToolTags.js"
import { Turn, type TurnEvent, type TurnRequest } from "../src/Turn.js"
import { withAiosStack } from "./util.js"

const withStack = withAiosStack

/** Collects a turn's events and the warnings it logged. */
const run = (request: TurnRequest) =>
  Effect.gen(function*() {
    const warnings: Array<{ message: string; annotations: Record<string, unknown> }> = []
    const logger = Logger.make(({ annotations, logLevel, message }) => {
      if (logLevel.label === "WARN") {
        warnings.push({ message: String(message), annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
      }
    })
    const events = yield* Effect.flatMap(Turn, (turn) => Stream.runCollect(turn.run(request))).pipe(
      Effect.map(Chunk.toReadonlyArray),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    return { events, warnings }
  })

const text = (events: ReadonlyArray<TurnEvent>) => events.flatMap((e) => (e._tag === "TextDelta" ? [e.text] : [])).join("")
const calls = (events: ReadonlyArray<TurnEvent>) => events.filter((e) => e._tag === "ToolCallEnd")

const readTool: ToolTags.ToolDefinition = {
  name: "read",
  parameters: { type: "object", properties: { path: { type: "string" }, limit: { type: "integer" } }, required: ["path"] }
}

const ask = (tools: ReadonlyArray<ToolTags.ToolDefinition> = [readTool], model = "tool-user"): TurnRequest => ({
  model,
  context: { messages: [{ role: "user", content: "do it" }], tools }
})

/** An SSE body for `/v1/chat/completions` with one native call whose arguments are `args`, verbatim. */
const nativeCallBody = (name: string, args: string): string => {
  const chunk = (delta: unknown, finish: string | null = null) =>
    `data: ${
      JSON.stringify({
        id: "chatcmpl-t",
        object: "chat.completion.chunk",
        created: 0,
        model: "tool-user",
        choices: [{ index: 0, delta, finish_reason: finish }]
      })
    }\n\n`
  return [
    chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name, arguments: "" } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: args } }] }),
    chunk({}, "tool_calls"),
    "data: [DONE]\n\n"
  ].join("")
}

const sse = (body: string): ReferenceKernel.Fault => ({ _tag: "Http", status: 200, body, contentType: "text/event-stream" })

describe("Turn: the model's calls are passed on", () => {
  it.effect("an unknown tool's call becomes a call (start/delta/end, fresh alphanumeric id), text kept, toolUse", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.script({
        _tag: "Reply",
        text: "Deleting now.\n<function_calls>\n<invoke name=\"rm_rf\">\n<parameter name=\"path\">/</parameter>\n" +
          "</invoke>\n<invoke name=\"read\">\n<parameter name=\"path\">a.md</parameter>\n</invoke>\n</function_calls>"
      })
      const { events, warnings } = yield* run(ask())
      const toolEvents = events.filter((e) => e._tag.startsWith("ToolCall"))
      expect(toolEvents.map((e) => e._tag)).toEqual([
        "ToolCallStart",
        "ToolCallDelta",
        "ToolCallEnd",
        "ToolCallStart",
        "ToolCallDelta",
        "ToolCallEnd"
      ])
      expect(calls(events)).toMatchObject([{ name: "rm_rf", arguments: { path: "/" } }, { name: "read", arguments: { path: "a.md" } }])
      const ids = toolEvents.map((e) => ("id" in e ? e.id : ""))
      expect(ids[0]).toMatch(/^[A-Za-z0-9]+$/)
      expect(new Set(ids).size).toBe(2)
      expect(toolEvents[1]).toMatchObject({ argumentsDelta: "{\"path\":\"/\"}" })
      expect(text(events)).toBe("Deleting now.\n")
      expect(events.at(-1)).toMatchObject({ _tag: "Finish", reason: "toolUse" })
      expect(warnings.some((w) => w.annotations.tool === "rm_rf")).toBe(true)
    }).pipe(withStack()))

  it.effect("a malformed call with a name is passed on with what could be read; one without a name is text", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.script({
        _tag: "Reply",
        text: "A <function_calls>\nstray words\n</function_calls> B " +
          "<function_calls>\n<invoke name=\"read\">\n<parameter name=\"path\">x</parameter>\n<parameter name=\"path\">y</parameter>\n" +
          "</invoke>\n</function_calls>"
      })
      const { events } = yield* run(ask())
      expect(text(events)).toContain("stray words")
      expect(text(events)).toContain("A ")
      expect(text(events)).toContain(" B ")
      expect(calls(events)).toHaveLength(1)
      expect(calls(events)[0]).toMatchObject({ name: "read" })
      expect(events.at(-1)).toMatchObject({ _tag: "Finish", reason: "toolUse" })
    }).pipe(withStack()))

  it.effect("an invalid call whose name is absurdly long is not passed on: its text stays in the reply", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const name = "x".repeat(300)
      kernel.script({ _tag: "Reply", text: `Trying.\n<function_calls>\n<invoke name="${name}">\n</invoke>\n</function_calls>` })
      const { events } = yield* run(ask())
      expect(calls(events)).toEqual([])
      expect(text(events)).toContain(name)
      expect(events.at(-1)).toMatchObject({ _tag: "Finish", reason: "stop" })
    }).pipe(withStack()))

  it.effect("native call arguments that are not JSON: the call goes on with {}, its text in the delta, a warning", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.scriptEndpoint("/v1/chat/completions", sse(nativeCallBody("rm_rf", "{\"path\": ")))
      const { events, warnings } = yield* run({ ...ask(), toolCalls: "native" })
      expect(calls(events)).toMatchObject([{ name: "rm_rf", arguments: {} }])
      expect(events.filter((e) => e._tag === "ToolCallDelta").map((e) => ("argumentsDelta" in e ? e.argumentsDelta : "")).join(""))
        .toBe("{\"path\": ")
      expect(events.at(-1)).toMatchObject({ _tag: "Finish", reason: "toolUse" })
      expect(warnings.some((w) => /not a JSON object/.test(w.message) && w.annotations.tool === "rm_rf")).toBe(true)
    }).pipe(withStack({}, { backend: "openai-compatible" })))

  it.effect("100k-deep native arguments: the call goes on with {} (its text in the delta), never a stack overflow", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const depth = 100_000
      const deep = `${"{\"a\":".repeat(depth)}1${"}".repeat(depth)}`
      kernel.scriptEndpoint("/v1/chat/completions", sse(nativeCallBody("read", deep)))
      const { events, warnings } = yield* run({ ...ask(), toolCalls: "native" })
      const [call] = calls(events)
      expect(call).toMatchObject({ name: "read", arguments: {} })
      // What OpenClaw receives can be written back as JSON (it stores the transcript).
      expect(() => JSON.stringify(call?.arguments)).not.toThrow()
      expect(events.filter((e) => e._tag === "ToolCallDelta").map((e) => ("argumentsDelta" in e ? e.argumentsDelta : "")).join(""))
        .toBe(deep)
      expect(warnings.some((w) => /passed on as \{\}/.test(w.message) && w.annotations.tool === "read")).toBe(true)
    }).pipe(withStack({}, { backend: "openai-compatible" })))

  it.effect("100k-deep nesting in a tag call's object parameter: a clear result, never a defect", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const depth = 100_000
      const objectTool: ToolTags.ToolDefinition = {
        name: "put",
        parameters: { type: "object", properties: { doc: { type: "object" } } }
      }
      kernel.script({
        _tag: "Reply",
        text: `<function_calls>\n<invoke name="put">\n<parameter name="doc">${"{\"a\":".repeat(depth)}1${
          "}".repeat(depth)
        }</parameter>\n</invoke>\n</function_calls>`
      })
      const exit = yield* Effect.exit(run(ask([objectTool])))
      if (exit._tag === "Success") {
        expect(calls(exit.value.events)[0]?.name).toBe("put")
        expect(() => JSON.stringify(calls(exit.value.events)[0]?.arguments)).not.toThrow()
      } else {
        // A failure is typed, format-class (a malformed reply), never a defect.
        expect(exit.cause._tag).toBe("Fail")
        expect(exit.cause._tag === "Fail" ? exit.cause.error : undefined).toMatchObject({ _tag: "MalformedResponse", kind: "malformed" })
      }
    }).pipe(withStack()))

  it.effect("an empty reply is still the model's empty reply", () =>
    Effect.gen(function*() {
      ;(yield* ReferenceKernel.ReferenceKernel).script({ _tag: "Reply", text: "" })
      const error = yield* Effect.flip(run(ask()))
      expect(error).toMatchObject({ _tag: "EmptyReply", kind: "empty_reply" })
    }).pipe(withStack()))
})
