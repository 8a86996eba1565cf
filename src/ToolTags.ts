/**
 * Tool calls written as tags. Through the AIOS kernel a model calls tools by writing
 *
 * ```text
 * <function_calls>
 * <invoke name="get_weather">
 * <parameter name="city">Paris</parameter>
 * </invoke>
 * </function_calls>
 * ```
 *
 * into its text. This module parses that (whole text, or streamed chunk by chunk through the same state
 * machine), renders tools, calls, results and whole OpenClaw contexts into kernel chat messages, and assigns
 * call ids. Everything here is pure except id generation; nothing throws.
 *
 * ## The rules, stated once
 * - **Blocks.** A block runs from `<function_calls>` to the first `</function_calls>` outside CDATA (both written
 *   exactly so). Its calls are delivered when the closing tag arrives. A block that is never closed — cut by a
 *   length limit, a dropped connection, or a stop sequence that ate `</function_calls>` — is returned as text
 *   and never executed. A caller that stopped the model with the stop sequence `</function_calls>` pushes that
 *   string back before ending (servers strip stop sequences), and the block then counts.
 * - **Invokes.** `<invoke name="x">…</invoke>`, `<invoke name="x"></invoke>`, `<invoke name="x"/>`; attributes
 *   double-, single- or un-quoted, spaces around `=` allowed. Closing tags must name their element
 *   (`</invoke>`, `</parameter>`, whitespace before `>` allowed); anything else is not a closer.
 * - **Values.** A value ends at the first `</parameter>` outside CDATA. Entities (`&amp; &lt; &gt; &quot;
 *   &apos; &#N; &#xN;`) are decoded once, in one pass; CDATA is literal. For string values one line break
 *   right after the opening tag and one right before the closing tag are markup, not value. Then the tool's
 *   JSON Schema types the value: `integer`/`number`/`boolean`/`null` are converted, `object`/`array` are
 *   JSON-decoded, a `string` stays a string; a value that does not convert (or nests over 256 levels deep)
 *   stays a string, for the tool's own validation to tell the model.
 * - **Invalid calls** are reported (`InvalidCall`, with the raw text) and not executed: a parameter or invoke
 *   tag met inside a value before its `</parameter>`, or text after a `</parameter>` where only tags may
 *   follow (so a value holding a raw `</parameter>` or `</invoke>` is reported, never cut short silently), a
 *   duplicate parameter name, more than 1,000 parameters, a missing or over-long tool name, a name that is not
 *   among the turn's tools, text between invokes. An invalid invoke keeps its name and what could be read of
 *   its parameters (`InvalidCall.arguments`). A malformed invoke extends to its `</invoke>` or the next
 *   `<invoke`, so the invokes beside it are still delivered. (A raw value that contains a whole well-formed
 *   closing sequence, such as `</parameter></invoke>` and then another invoke, reads exactly like markup:
 *   values must escape `<`.)
 * - **Not calls.** Markup inside Markdown code fences (``` or ~~~ at a line start, up to 3 spaces in) and
 *   inline code spans (closed by an equal backtick run, or by the end of the line) is prose. `<think>`
 *   sections follow the `think` option.
 * - **Limits.** A block longer than `maxBlockBytes` is returned as text with an `InvalidCall` report, so an
 *   open block never holds more than that; apart from it, at most a 16-character partial tag is held back.
 *   Time is linear in the text for any input, chunking and tool schema, and spread over the chunks: a block
 *   is parsed as it arrives (each chunk's share when it arrives), and a schema is read once per node (one that
 *   refers to itself included).
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as render from "./internal/toolTags/render.js"
import { type Item, Scanner, type ScannerConfig } from "./internal/toolTags/scanner.js"
import { makeToolIndex } from "./internal/toolTags/values.js"

/**
 * A JSON Schema. Typed loosely on purpose: TypeBox schemas (OpenClaw's) are interfaces without an index
 * signature, and anything object-shaped is accepted and read defensively.
 *
 * @since 0.1.0
 */
export type JsonSchema = object

/** A tool the model may call. @since 0.1.0 */
export interface ToolDefinition {
  readonly name: string
  readonly description?: string | undefined
  /** JSON Schema of the arguments object; its `properties` type the parameter values. */
  readonly parameters?: JsonSchema | undefined
}

/** @since 0.1.0 */
export interface TextContent {
  readonly type: "text"
  readonly text: string
}

/** @since 0.1.0 */
export interface ImageContent {
  readonly type: "image"
  readonly mimeType?: string | undefined
  readonly data?: string | undefined
}

/** @since 0.1.0 */
export interface ThinkingContent {
  readonly type: "thinking"
  readonly thinking: string
}

/** A tool call in an assistant message. @since 0.1.0 */
export interface ToolCallContent {
  readonly type: "toolCall"
  readonly id: string
  readonly name: string
  readonly arguments: Readonly<Record<string, unknown>>
}

/** @since 0.1.0 */
export interface UserMessage {
  readonly role: "user"
  readonly content: string | ReadonlyArray<TextContent | ImageContent>
}

/** @since 0.1.0 */
export interface AssistantMessage {
  readonly role: "assistant"
  readonly content: ReadonlyArray<TextContent | ThinkingContent | ToolCallContent>
}

/** The result of one tool call, linked to it by id and name. @since 0.1.0 */
export interface ToolResultMessage {
  readonly role: "toolResult"
  readonly toolCallId: string
  readonly toolName: string
  readonly content: ReadonlyArray<TextContent | ImageContent>
  readonly isError?: boolean | undefined
}

/** @since 0.1.0 */
export type Message = UserMessage | AssistantMessage | ToolResultMessage

/** A conversation as OpenClaw hands it to a provider. @since 0.1.0 */
export interface Context {
  readonly systemPrompt?: string | undefined
  readonly messages: ReadonlyArray<Message>
  readonly tools?: ReadonlyArray<ToolDefinition> | undefined
}

/** A kernel (OpenAI-format) chat message. @since 0.1.0 */
export interface ChatMessage {
  readonly role: "system" | "user" | "assistant"
  readonly content: string
}

/**
 * A call to render: anything with a name and an arguments object (a parsed `ToolCall`, an OpenClaw `toolCall`).
 *
 * @since 0.1.0
 */
export interface ToolCallInput {
  readonly name: string
  readonly arguments: Readonly<Record<string, unknown>>
}

/** A tool result to render. @since 0.1.0 */
export interface ToolResultInput {
  readonly toolCallId: string
  readonly toolName: string
  readonly content: ReadonlyArray<TextContent | ImageContent>
  readonly isError?: boolean | undefined
}

/** Prose (everything that is not a block), byte for byte. @since 0.1.0 */
export interface Text {
  readonly _tag: "Text"
  readonly text: string
}

/** A complete, valid call. @since 0.1.0 */
export interface ToolCall {
  readonly _tag: "ToolCall"
  /** Alphanumeric, unique within the conversation. */
  readonly id: string
  readonly name: string
  readonly arguments: Record<string, unknown>
}

/**
 * A call that is not executed, and why. `raw` is its text (for an over-long block, the first 256 characters).
 *
 * @since 0.1.0
 */
export interface InvalidCall {
  readonly _tag: "InvalidCall"
  /** The tool name, whenever one was read (also an unknown, empty or over-long one). */
  readonly name?: string
  readonly reason: string
  readonly raw: string
  /**
   * An invoke's parameters, best effort, for a caller that passes the call on for the tool's owner to judge:
   * typed by a known tool's schema, strings for an unknown tool; those after a structural fault (an unclosed or
   * malformed tag, stray text) left out; of duplicates the last. Absent for stray text and over-long blocks.
   * @since 0.2.0
   */
  readonly arguments?: Record<string, unknown>
}

/** @since 0.1.0 */
export type Part = Text | ToolCall

/** Whole-text parse result: text and calls in order, plus the calls that were not executed. @since 0.1.0 */
export interface ParseResult {
  readonly parts: ReadonlyArray<Part>
  readonly invalid: ReadonlyArray<InvalidCall>
}

/** @since 0.1.0 */
export interface TextDelta {
  readonly _tag: "TextDelta"
  readonly text: string
}

/** @since 0.1.0 */
export interface ToolCallStart {
  readonly _tag: "ToolCallStart"
  readonly id: string
  readonly name: string
}

/** The arguments as JSON text (emitted once, whole, when the block closes). @since 0.1.0 */
export interface ToolCallDelta {
  readonly _tag: "ToolCallDelta"
  readonly id: string
  readonly argumentsDelta: string
}

/** @since 0.1.0 */
export interface ToolCallEnd {
  readonly _tag: "ToolCallEnd"
  readonly id: string
  readonly name: string
  readonly arguments: Record<string, unknown>
}

/**
 * What the streaming parser emits. A call's start, delta and end come together when its block closes; text
 * deltas come as soon as they cannot be part of a tag.
 *
 * @since 0.1.0
 */
export type ToolTagEvent = TextDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | InvalidCall

/** @since 0.1.0 */
export const DEFAULT_MAX_BLOCK_BYTES = 1024 * 1024
/** @since 0.1.0 */
export const DEFAULT_MAX_NAME_LENGTH = 120

/** @since 0.1.0 */
export interface ToolTagsOptions {
  /**
   * The turn's tools. They type parameter values, and a call to any other name is not executed (it becomes an
   * `InvalidCall`). Absent: every name is accepted and every value stays a string.
   */
  readonly tools?: ReadonlyArray<ToolDefinition> | undefined
  /**
   * `<think>…</think>` sections (default `"text"`):
   * - `"text"`: kept as text, tags included; markup inside is prose, never a call.
   * - `"strip"`: dropped, tags included (an unclosed one runs to the end); never a call.
   * - `"parse"`: the tags are ordinary text, and calls inside them count like any others.
   */
  readonly think?: "strip" | "text" | "parse" | undefined
  /**
   * The longest `<function_calls>` block (tags included) that is parsed, in UTF-16 code units (= bytes for
   * ASCII). Longer blocks are returned as text with an `InvalidCall`. Default 1 MiB; at least 33.
   */
  readonly maxBlockBytes?: number | undefined
  /** The longest tool name accepted. Default 120. */
  readonly maxNameLength?: number | undefined
  /**
   * Call ids. Non-alphanumerics are removed from what it returns; an empty or repeated id (within one parse)
   * is replaced by a default one. Default: a process-wide generator, `call` + 12 random alphanumerics + a
   * counter.
   */
  readonly idGenerator?: (() => string) | undefined
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

const randomAlnum = (n: number): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => ALNUM[b % ALNUM.length]).join("")

/** Removes everything but `[A-Za-z0-9]` (what OpenClaw keeps of an id). @since 0.1.0 */
export const sanitizeId = (id: string): string => String(id).replace(/[^A-Za-z0-9]/g, "")

/** Whether an id survives OpenClaw unchanged: non-empty and alphanumeric. @since 0.1.0 */
export const isValidId = (id: string): boolean => typeof id === "string" && /^[A-Za-z0-9]+$/.test(id)

/**
 * A generator of ids `prefix + n` (n = 1, 2, …). The default prefix is `call` + 12 random alphanumerics, so
 * two generators practically never collide; ids from one generator never repeat.
 *
 * @since 0.1.0
 */
export const makeIdGenerator = (prefix?: string): () => string => {
  const p = sanitizeId(prefix ?? `call${randomAlnum(12)}`) || "call"
  let n = 0
  return () => `${p}${++n}`
}

let defaultIds: (() => string) | undefined
const defaultId = (): string => (defaultIds ??= makeIdGenerator())()

const toConfig = (options: ToolTagsOptions | undefined): ScannerConfig => {
  const o = options ?? {}
  const maxNameLength = typeof o.maxNameLength === "number" && o.maxNameLength >= 1
    ? Math.floor(o.maxNameLength)
    : DEFAULT_MAX_NAME_LENGTH
  const gen = o.idGenerator
  // The default generator's ids are alphanumeric and never repeat by construction: no checks needed.
  let nextId = defaultId
  if (typeof gen === "function") {
    const issued = new Set<string>()
    nextId = () => {
      let id = ""
      try {
        id = sanitizeId(gen())
      } catch {
        id = ""
      }
      while (id === "" || issued.has(id)) id = defaultId()
      issued.add(id)
      return id
    }
  }
  return {
    think: o.think === "strip" || o.think === "parse" ? o.think : "text",
    maxBlockBytes: typeof o.maxBlockBytes === "number" && o.maxBlockBytes > 0
      ? Math.max(33, Math.floor(o.maxBlockBytes))
      : DEFAULT_MAX_BLOCK_BYTES,
    index: makeToolIndex(o.tools, maxNameLength),
    nextId
  }
}

/** A call is delivered as its start, arguments and end, together. (Most pushes hold no call: no copy then.) */
const toEvents = (items: Array<Item>): ReadonlyArray<ToolTagEvent> =>
  items.every((item): item is TextDelta | InvalidCall => item._tag !== "ToolCall") ? items : items.flatMap((item): Array<ToolTagEvent> =>
    item._tag !== "ToolCall" ? [item] : [
      { _tag: "ToolCallStart", id: item.id, name: item.name },
      { _tag: "ToolCallDelta", id: item.id, argumentsDelta: JSON.stringify(item.arguments) },
      { _tag: "ToolCallEnd", id: item.id, name: item.name, arguments: item.arguments }
    ]
  )

/** An incremental parser that returns events, for a caller that feeds it chunk by chunk. @since 0.1.0 */
export interface StreamParser {
  /** Feeds a chunk; returns what is now certain (its text in one delta). Never throws. */
  push(chunk: string): ReadonlyArray<ToolTagEvent>
  /** Ends the text: held-back text is released, an unclosed block becomes text. Later calls return nothing. */
  end(): ReadonlyArray<ToolTagEvent>
  /** UTF-16 code units held back right now (a partial tag, or the open block): at most `maxBlockBytes` + 16. */
  readonly buffered: number
}

/**
 * A fresh incremental parser. Feeding it a text in any chunking gives the same text, calls (up to ids) and
 * invalid calls as `parse` of the whole text.
 *
 * @since 0.1.0
 */
export const makeStreamParser = (options?: ToolTagsOptions): StreamParser => {
  const scanner = new Scanner(toConfig(options))
  const after = (step: () => void): ReadonlyArray<ToolTagEvent> => {
    step()
    return toEvents(scanner.take())
  }
  return {
    push: (chunk) => after(() => scanner.push(chunk)),
    end: () => after(() => scanner.end()),
    get buffered() {
      return scanner.buffered
    }
  }
}

/** Parses a whole text: exactly the streaming parser fed the text as one chunk, then ended. @since 0.1.0 */
export const parse = (text: string, options?: ToolTagsOptions): ParseResult => {
  const scanner = new Scanner(toConfig(options))
  scanner.push(text)
  scanner.end()
  const parts: Array<Part> = []
  const invalid: Array<InvalidCall> = []
  for (const item of scanner.take()) {
    const last = parts.at(-1)
    if (item._tag === "InvalidCall") invalid.push(item)
    else if (item._tag === "ToolCall") parts.push(item)
    // Text on both sides of an invalid call is one part: the invalid call is not in `parts`.
    else if (last?._tag === "Text") parts[parts.length - 1] = { _tag: "Text", text: last.text + item.text }
    else parts.push({ _tag: "Text", text: item.text })
  }
  return { parts, invalid }
}

/** The most text one step of `feed` gives the parser. */
const STEP = 65_536

/**
 * `parser.push(text)` as an Effect that runs one bounded step at a time: a text longer than 64 KiB is pushed in
 * pieces of that size, yielding between them (`Effect.yieldNow`) so that the other fibers, such as other turns,
 * run in between and one huge reply does not hold them up. (Its text then comes in several deltas.)
 *
 * @since 0.2.0
 */
export const feed = (parser: StreamParser, text: string): Effect.Effect<ReadonlyArray<ToolTagEvent>> =>
  Effect.suspend(() => {
    const events: Array<ToolTagEvent> = []
    const step = (at: number): Effect.Effect<ReadonlyArray<ToolTagEvent>> => {
      for (const e of parser.push(text.slice(at, at + STEP))) events.push(e)
      return at + STEP >= text.length ? Effect.succeed(events) : Effect.flatMap(Effect.yieldNow(), () => step(at + STEP))
    }
    return step(0)
  })

/**
 * The streaming parser as a `Stream` transform: text chunks in, `ToolTagEvent`s out; the text of one upstream
 * `Chunk` (pieces that arrived together) comes out as one delta, unless over 64 KiB (see `feed`). Each run of
 * the stream gets a fresh parser; when the input ends the held-back text is released. If the input fails, what
 * was held back (at most a partial tag or an open block) is dropped with it.
 *
 * @since 0.1.0
 */
export const stream = (options?: ToolTagsOptions) =>
<E, R>(self: Stream.Stream<string, E, R>): Stream.Stream<ToolTagEvent, E, R> =>
  Stream.suspend(() => {
    const parser = makeStreamParser(options)
    return self.pipe(
      Stream.mapChunksEffect((pieces) => Effect.map(feed(parser, Chunk.join(pieces, "")), Chunk.unsafeFromArray)),
      Stream.concat(Stream.suspend(() => Stream.fromIterable(parser.end())))
    )
  })

/** `"toolUse"` when the message holds a call (OpenClaw then runs the tools), else the kernel's reason. @since 0.1.0 */
export const stopReason = (
  parts: ReadonlyArray<Part>,
  kernelReason: "stop" | "length"
): "stop" | "length" | "toolUse" => parts.some((p) => p._tag === "ToolCall") ? "toolUse" : kernelReason

/**
 * The system-prompt section that tells the model how to call tools, then the tools in a machine-readable form:
 * `<tools>`, and for each `<tool name="read">` with `<description>escaped text</description>` and
 * `<parameters>{JSON Schema, every "<" written as \u003c}</parameters>`.
 *
 * @since 0.1.0
 */
export const renderToolsPrompt: (tools: ReadonlyArray<ToolDefinition>) => string = render.renderToolsPrompt

/**
 * Calls as one `<function_calls>` block, escaped so that `parse(renderToolCalls(calls))` gives the calls back
 * (given the tools' schemas): `&` and `<` as entities; multi-line values between newlines.
 *
 * @since 0.1.0
 */
export const renderToolCalls: (calls: ReadonlyArray<ToolCallInput>) => string = render.renderToolCalls

/**
 * Tool results as a `<function_results>` block: one `<result tool_call_id="…" name="…">` per result (with
 * `error="true"` for failures), text parts joined by newlines, images as `[image: type]`, `&` and `<` escaped.
 *
 * @since 0.1.0
 */
export const renderToolResults: (results: ReadonlyArray<ToolResultInput>) => string = render.renderToolResults

/**
 * A whole OpenClaw context as kernel chat messages: one system message (the system prompt, then the tools
 * section), user messages as text (images as placeholders), assistant messages as their text with tool calls
 * as `<function_calls>` blocks (thinking is not sent back), and each run of consecutive tool results as one
 * user message holding a `<function_results>` block. Empty messages are left out.
 *
 * @since 0.1.0
 */
export const renderContext: (context: Context) => Array<ChatMessage> = render.renderContext
