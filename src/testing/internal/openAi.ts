/**
 * The reference kernel's OpenAI-compatible endpoints: `GET /v1/models` and `POST /v1/chat/completions` (plain
 * JSON, or server-sent events when `stream: true`), with native tool calls streamed as deltas, usage in a final
 * chunk when `stream_options.include_usage` asks for it, bearer-key checks, and the scripted faults.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Chunk from "effect/Chunk"
import type { ChatMessage, NativeTool } from "./models.js"
import type { Fault, ModelSpec } from "../ReferenceKernel.js"
import { isTransportFault, realSleep, transportFault } from "./faults.js"
import * as Models from "./models.js"

/** How the `/v1` endpoints behave; read on every request, so tests may change it between calls. */
export interface Settings {
  /** Characters per streamed piece; a list is used cyclically (split points in UTF-16 code units). */
  readonly chunkChars: number | ReadonlyArray<number>
  /** Real-time pause between streamed pieces. */
  readonly delayMs: number
  /** When set, only these bearer keys are accepted (401 otherwise). */
  readonly apiKeys: ReadonlyArray<string> | undefined
  /** Whether a stream ends with a usage chunk when the request asks for it. */
  readonly streamUsage: boolean
  /** When false, answers JSON even to `stream: true` (a server without streaming). */
  readonly streaming: boolean
  /** When false, a request carrying `tools` is refused with 400 (a server without native tools). */
  readonly nativeTools: boolean
  /** Added latency before answering a chat request, real time. */
  readonly latencyMs: number
}

/** What the handlers need from the reference kernel. */
export interface Host {
  readonly models: () => ReadonlyArray<ModelSpec>
  readonly settings: () => Settings
  /** The next scripted fault: the key's own queue first, then the endpoint's. */
  readonly nextFault: (endpoint: "/v1/models" | "/v1/chat/completions", key: string | undefined) => Fault | undefined
  readonly countKey: (key: string | undefined) => void
  readonly enter: () => void
  readonly leave: () => void
}

// ---------------------------------------------------------------------------------------------------------------
// Bodies for the faults that act on timing and size (shared with the AIOS endpoints)
// ---------------------------------------------------------------------------------------------------------------

const encoder = new TextEncoder()

/** `text` sent one byte every `intervalMs` (real time). */
export const trickle = (text: string, intervalMs: number): Stream.Stream<Uint8Array> => {
  const bytes = encoder.encode(text)
  return Stream.range(0, bytes.length - 1).pipe(
    Stream.mapEffect((i) => Effect.as(i === 0 ? Effect.void : realSleep(intervalMs), bytes.subarray(i, i + 1)))
  )
}

/** `filler` every `intervalMs` (real time), forever, the first one at once. */
export const keepAlive = (filler: string, intervalMs: number): Stream.Stream<Uint8Array> => {
  const bytes = encoder.encode(filler)
  return Stream.repeatEffect(Effect.as(realSleep(intervalMs), bytes)).pipe(Stream.prepend(Chunk.of(bytes)))
}

/** One 64 KiB block of `a`s, shared by every large body (never written to). */
const block = encoder.encode("a".repeat(64 * 1024))

type LargeBody = Extract<Fault, { readonly _tag: "LargeBody" }>

/** `count` bytes of `a`, made as they are sent. */
const filler = (count: number): Stream.Stream<Uint8Array> =>
  Stream.unfold(Math.max(0, count), (left) =>
    left <= 0 ? Option.none() : Option.some([left >= block.length ? block : block.subarray(0, left), left - block.length] as const))

/** Tells `onSent` the running total of bytes the stream has given the socket. */
const counted = (stream: Stream.Stream<Uint8Array>, onSent: ((bytes: number) => void) | undefined): Stream.Stream<Uint8Array> => {
  if (onSent === undefined) return stream
  let sent = 0
  return Stream.map(stream, (bytes) => {
    sent += bytes.length
    onSent(sent)
    return bytes
  })
}

/** A JSON body of exactly `fault.bytes` bytes: `head`, `a`s, `tail`. */
export const largeJson = (fault: LargeBody, head: string, tail: string): HttpServerResponse.HttpServerResponse => {
  const ends = encoder.encode(head).length + encoder.encode(tail).length
  const body = Stream.make(encoder.encode(head)).pipe(
    Stream.concat(filler(fault.bytes - ends)),
    Stream.concat(Stream.make(encoder.encode(tail)))
  )
  return HttpServerResponse.stream(counted(body, fault.onSent), {
    contentType: "application/json",
    ...(fault.declareLength === true ? { contentLength: Math.max(fault.bytes, ends) } : {})
  })
}

/** A streamed completion of about `fault.bytes` bytes of content events, then its finish and `[DONE]`. */
const largeSse = (fault: LargeBody, model: string): HttpServerResponse.HttpServerResponse => {
  const event = encoder.encode(
    `data: ${JSON.stringify({ object: "chat.completion.chunk", model, choices: [{ index: 0, delta: { content: "a".repeat(64 * 1024) } }] })}\n\n`
  )
  const body = Stream.unfold(Math.max(0, fault.bytes), (left) =>
    left <= 0 ? Option.none() : Option.some([event, left - event.length] as const)).pipe(
      Stream.concat(Stream.make(encoder.encode(
        `data: ${JSON.stringify({ object: "chat.completion.chunk", model, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n` +
          "data: [DONE]\n\n"
      )))
    )
  return HttpServerResponse.stream(counted(body, fault.onSent), { contentType: "text/event-stream" })
}

/** Token counts as the reference reports them: a quarter of the characters, rounded up. */
export const tokens = (text: string): number => Math.ceil(text.length / 4)

/** The usage the reference reports for a reply to `messages`. */
export const usageFor = (
  messages: ReadonlyArray<ChatMessage>,
  reply: Models.ModelReply
): { readonly prompt_tokens: number; readonly completion_tokens: number; readonly total_tokens: number } => {
  const prompt = tokens(messages.map((m) => m.content ?? "").join("\n"))
  const completion = tokens((reply.text ?? "") + reply.toolCalls.map((c) => c.name + JSON.stringify(c.parameters)).join(""))
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

const json = (body: unknown, status = 200, headers: Readonly<Record<string, string>> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

interface ErrorShape {
  readonly message: string
  readonly type: string
  readonly code: string | null
}

/** OpenAI's error wording and types per status. */
const defaultError = (status: number, model: string): ErrorShape => {
  switch (status) {
    case 429:
      return {
        message: `Rate limit reached for ${model || "requests"}. Please try again later.`,
        type: "requests",
        code: "rate_limit_exceeded"
      }
    case 401:
      return { message: "Incorrect API key provided.", type: "invalid_request_error", code: "invalid_api_key" }
    case 403:
      return { message: "You are not allowed to use this model.", type: "permission_error", code: null }
    case 402:
      return {
        message: "You exceeded your current quota, please check your plan and billing details.",
        type: "insufficient_quota",
        code: "insufficient_quota"
      }
    case 400:
      return { message: "Invalid request.", type: "invalid_request_error", code: null }
    case 404:
      return { message: `The model '${model}' does not exist`, type: "invalid_request_error", code: "model_not_found" }
    case 503:
      return { message: "The server is overloaded. Please try again later.", type: "server_error", code: null }
    default:
      return { message: "The server had an error while processing your request.", type: "server_error", code: null }
  }
}

const errorBody = (status: number, model: string, message?: string, errorType?: string) => {
  const base = defaultError(status, model)
  return {
    error: {
      message: message ?? base.message,
      type: errorType ?? base.type,
      param: null,
      code: errorType ?? base.code
    }
  }
}

const bearer = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const header = request.headers["authorization"]
  const match = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header)
  return match?.[1]?.trim()
}

/** Cuts `text` into pieces of the configured sizes (cyclic), at UTF-16 code-unit boundaries. */
export const pieces = (text: string, chunkChars: number | ReadonlyArray<number>): ReadonlyArray<string> => {
  const sizes = typeof chunkChars === "number" ? [chunkChars] : chunkChars.length > 0 ? chunkChars : [4]
  const out: Array<string> = []
  let at = 0
  for (let i = 0; at < text.length; i++) {
    const size = Math.max(1, Math.floor(sizes[i % sizes.length] ?? 4))
    out.push(text.slice(at, at + size))
    at += size
  }
  return out
}

/** The model's reply, as `/query` would compute it. */
const replyOf = (spec: ModelSpec, messages: ReadonlyArray<ChatMessage>, tools: ReadonlyArray<NativeTool>): Models.ModelReply => {
  const behaviour = spec.behaviour ?? "echo"
  return behaviour === "echo"
    ? Models.echo(messages)
    : behaviour === "tools"
    ? Models.toolUser(messages, tools)
    : behaviour(messages, tools)
}

/** Accepts OpenAI's content parts (`[{type:"text",text}]`) as well as strings. */
const normaliseMessages = (raw: ReadonlyArray<unknown>): Array<ChatMessage> =>
  raw.map((m) => {
    const message = (m ?? {}) as Record<string, unknown>
    const content = message.content
    const text = typeof content === "string"
      ? content
      : Array.isArray(content)
      ? content.map((p) => (typeof (p as { text?: unknown })?.text === "string" ? (p as { text: string }).text : "")).join("")
      : null
    return { ...(message as ChatMessage), content: text }
  })

interface Parsed {
  readonly model: string
  readonly spec: ModelSpec | undefined
  readonly messages: Array<ChatMessage>
  readonly tools: Array<NativeTool>
  readonly stream: boolean
  readonly includeUsage: boolean
}

const parse = (body: unknown, models: ReadonlyArray<ModelSpec>): Parsed | { readonly invalid: string } => {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return { invalid: "The body must be a JSON object." }
  if ("__invalidJson" in body) return { invalid: "We could not parse the JSON body of your request." }
  const b = body as Record<string, unknown>
  if (typeof b.model !== "string" || b.model.trim() === "") return { invalid: "you must provide a model parameter" }
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    return { invalid: "'messages' must be a non-empty array" }
  }
  const options = b.stream_options as { include_usage?: unknown } | null | undefined
  return {
    model: b.model,
    spec: models.find((m) => m.name === b.model),
    messages: normaliseMessages(b.messages),
    tools: (Array.isArray(b.tools) ? b.tools : []) as Array<NativeTool>,
    stream: b.stream === true,
    includeUsage: options?.include_usage === true
  }
}

type Piece =
  | { readonly _tag: "Reasoning"; readonly text: string }
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "ToolStart"; readonly index: number; readonly id: string; readonly name: string }
  | { readonly _tag: "ToolArgs"; readonly index: number; readonly text: string }

/** The SSE body: role chunk, pieces, finish chunk, usage chunk, `[DONE]`; a stream fault cuts it short. */
const eventStream = (
  parsed: Parsed,
  reply: Models.ModelReply,
  settings: Settings,
  fault: Fault | undefined,
  leave: () => void
): Stream.Stream<Uint8Array> => {
  const id = `chatcmpl-ref${Math.floor(Math.random() * 1e9)}`
  const created = Math.floor(Date.now() / 1000)
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: parsed.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }]
  })
  const data = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`

  const list: Array<Piece> = [
    ...pieces(reply.reasoning ?? "", settings.chunkChars).map((text) => ({ _tag: "Reasoning" as const, text })),
    ...pieces(reply.text ?? "", settings.chunkChars).map((text) => ({ _tag: "Text" as const, text })),
    ...reply.toolCalls.flatMap((call, index): Array<Piece> => [
      { _tag: "ToolStart", index, id: call.id, name: call.name },
      ...pieces(JSON.stringify(call.parameters), settings.chunkChars).map((text) => ({ _tag: "ToolArgs" as const, index, text }))
    ])
  ]
  const render = (piece: Piece): string => {
    switch (piece._tag) {
      case "Reasoning":
        return data(chunk({ reasoning_content: piece.text }))
      case "Text":
        return data(chunk({ content: piece.text }))
      case "ToolStart":
        return data(chunk({
          tool_calls: [{ index: piece.index, id: piece.id, type: "function", function: { name: piece.name, arguments: "" } }]
        }))
      case "ToolArgs":
        return data(chunk({ tool_calls: [{ index: piece.index, function: { arguments: piece.text } }] }))
    }
  }
  const finish = reply.toolCalls.length > 0 ? "tool_calls" : "stop"
  const openEnd = fault?._tag === "OpenEnd"
  const tail = [
    data(chunk({}, finish)),
    ...(parsed.includeUsage && settings.streamUsage && !(openEnd && fault.usage === false)
      ? [data({ id, object: "chat.completion.chunk", created, model: parsed.model, choices: [], usage: usageFor(parsed.messages, reply) })]
      : []),
    ...(openEnd ? [] : ["data: [DONE]\n\n"])
  ]

  const cut = fault?._tag === "StreamError" || fault?._tag === "Stall" || fault?._tag === "KeepAlive"
    ? Math.max(0, fault.afterChunks ?? 0)
    : undefined
  const body = cut === undefined ? list.map(render) : list.slice(0, cut).map(render)
  const events = [data(chunk({ role: "assistant", content: "" })), ...body, ...(cut === undefined ? tail : [])]
  const ending: Stream.Stream<string> = fault?._tag === "StreamError"
    ? Stream.make(
      `${fault.event === true ? "event: error\n" : ""}${
        data(errorBody(fault.statusCode ?? 429, parsed.model, fault.error, fault.errorType))
      }`
    )
    : fault?._tag === "Stall" || openEnd
    ? Stream.never
    : Stream.empty
  const paced = settings.delayMs > 0
    ? Stream.mapEffect(
      Stream.zipWithIndex(Stream.fromIterable(events)),
      ([e, i]) => (i === 0 ? Effect.succeed(e) : Effect.as(realSleep(settings.delayMs), e))
    )
    : Stream.fromIterable(events)
  const bytes: Stream.Stream<Uint8Array> = fault?._tag === "Trickle"
    ? trickle(events.join(""), fault.intervalMs)
    : fault?._tag === "KeepAlive"
    ? Stream.concat(Stream.encodeText(paced), keepAlive(": keep-alive\n\n", fault.intervalMs))
    : Stream.encodeText(Stream.concat(paced, ending))
  return Stream.ensuring(bytes, Effect.sync(leave))
}

const completion = (parsed: Parsed, reply: Models.ModelReply) => ({
  id: `chatcmpl-ref${Math.floor(Math.random() * 1e9)}`,
  object: "chat.completion",
  created: Math.floor(Date.now() / 1000),
  model: parsed.model,
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: reply.text,
      ...(reply.reasoning ? { reasoning_content: reply.reasoning } : {}),
      ...(reply.toolCalls.length > 0
        ? {
          tool_calls: reply.toolCalls.map((c) => ({
            id: c.id,
            type: "function",
            function: { name: c.name, arguments: JSON.stringify(c.parameters) }
          }))
        }
        : {})
    },
    logprobs: null,
    finish_reason: reply.toolCalls.length > 0 ? "tool_calls" : "stop"
  }],
  usage: usageFor(parsed.messages, reply)
})

/**
 * Applies a fault that replaces the whole answer; `undefined` means: answer normally (possibly with a stream
 * fault or a replaced text, which the caller handles).
 */
const applyFault = (
  request: HttpServerRequest.HttpServerRequest,
  fault: Fault | undefined,
  model: string,
  streaming: boolean
): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> => {
  if (fault === undefined) return Effect.succeed(undefined)
  if (isTransportFault(fault)) return transportFault(request, fault)
  switch (fault._tag) {
    case "Status":
      return Effect.succeed(
        json(errorBody(fault.statusCode, model, fault.error, fault.errorType), fault.statusCode, fault.headers ?? {})
      )
    case "Malformed":
      return Effect.succeed(
        streaming
          ? HttpServerResponse.text(fault.body ?? "data: {\"choices\": [\n\n", { contentType: "text/event-stream" })
          : HttpServerResponse.text(fault.body ?? "{\"choices\": [", { contentType: "application/json" })
      )
    case "LargeBody":
      return Effect.succeed(streaming ? largeSse(fault, model) : largeJson(fault, "{\"filler\":\"", "\"}"))
    case "KeepAlive":
      // A stream's keep-alive comes after its first pieces (the normal path); a JSON answer's is all it sends.
      return Effect.succeed(
        streaming ? undefined : HttpServerResponse.stream(keepAlive(" ", fault.intervalMs), { contentType: "application/json" })
      )
    case "Trickle":
    case "OpenEnd":
      return Effect.succeed(undefined)
    case "Reply":
    case "StreamError":
    case "Stall":
      // Answered by the normal path: a replaced text, or a stream cut short. Without streaming, a stream
      // fault is the error it carries (Stall: a hang).
      if (streaming || fault._tag === "Reply") return Effect.succeed(undefined)
      return fault._tag === "Stall"
        ? Effect.never
        : Effect.succeed(json(errorBody(fault.statusCode ?? 429, model, fault.error, fault.errorType), fault.statusCode ?? 429))
  }
}

/** A JSON answer, or its body trickled when the fault says so. */
const answerJson = (body: unknown, fault: Fault | undefined) =>
  fault?._tag === "Trickle"
    ? HttpServerResponse.stream(trickle(JSON.stringify(body), fault.intervalMs), { contentType: "application/json" })
    : json(body)

/** `GET /v1/models`. */
const listModels = (host: Host, request: HttpServerRequest.HttpServerRequest, key: string | undefined) =>
  Effect.gen(function*() {
    const fault = host.nextFault("/v1/models", key)
    const faulted = yield* applyFault(request, fault, "", false)
    if (faulted !== undefined) return faulted
    return answerJson({
      object: "list",
      data: host.models().map((m) => ({ id: m.name, object: "model", created: 0, owned_by: m.backend ?? "reference", ...m.extra }))
    }, fault)
  })

/**
 * `POST /v1/chat/completions`, counted in flight from here until the answer is complete: for a stream, until
 * the stream ends (its own finalizer leaves), otherwise until the handler is done.
 */
const chat = (host: Host, request: HttpServerRequest.HttpServerRequest, body: unknown, key: string | undefined) => {
  let streamed = false
  return Effect.sync(host.enter).pipe(
    Effect.zipRight(answerChat(host, request, body, key, () => {
      streamed = true
    })),
    Effect.ensuring(Effect.sync(() => (streamed ? undefined : host.leave())))
  )
}

const answerChat = (
  host: Host,
  request: HttpServerRequest.HttpServerRequest,
  body: unknown,
  key: string | undefined,
  markStreamed: () => void
) =>
  Effect.gen(function*() {
    const settings = host.settings()
    const parsed = parse(body, host.models())
    if ("invalid" in parsed) return json(errorBody(400, "", parsed.invalid), 400)
    const streaming = parsed.stream && settings.streaming
    const fault = host.nextFault("/v1/chat/completions", key)
    const faulted = yield* applyFault(request, fault, parsed.model, streaming)
    if (faulted !== undefined) return faulted
    if (settings.latencyMs > 0) yield* realSleep(settings.latencyMs)
    if (parsed.spec === undefined) return json(errorBody(404, parsed.model), 404)
    if (parsed.tools.length > 0 && !settings.nativeTools) {
      return json(errorBody(400, parsed.model, "tools are not supported by this server"), 400)
    }
    const modelReply = replyOf(parsed.spec, parsed.messages, parsed.tools)
    const reply: Models.ModelReply = fault?._tag === "Reply" ? { text: fault.text, toolCalls: [] } : modelReply
    if (!streaming) return answerJson(completion(parsed, reply), fault)
    markStreamed()
    return HttpServerResponse.stream(eventStream(parsed, reply, settings, fault, host.leave), {
      contentType: "text/event-stream",
      headers: { "cache-control": "no-cache" }
    })
  })

/**
 * Answers a `/v1/...` request, or `undefined` when the path is not one of ours.
 */
export const handle = (
  host: Host,
  request: HttpServerRequest.HttpServerRequest,
  path: string,
  body: unknown
): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> => {
  const route = path === "/v1/models" && request.method === "GET"
    ? "models" as const
    : path === "/v1/chat/completions" && request.method === "POST"
    ? "chat" as const
    : undefined
  if (route === undefined) return Effect.succeed(undefined)
  const key = bearer(request)
  host.countKey(key)
  const allowed = host.settings().apiKeys
  if (allowed !== undefined && (key === undefined || !allowed.includes(key))) {
    return Effect.succeed(json(errorBody(401, ""), 401))
  }
  return route === "models" ? listModels(host, request, key) : chat(host, request, body, key)
}
