/**
 * The `KernelClient` service over an OpenAI-compatible `/v1` endpoint (OpenAI, `aimo chat --serve`, vLLM,
 * llama.cpp, Ollama, …): models from `GET {baseUrl}/models`, chat over `POST {baseUrl}/chat/completions` with
 * `stream: true`, decoded from server-sent events.
 *
 * Timeout: `requestTimeoutMs` (or `QueryRequest.timeoutMs`) bounds the wait for the response head and then
 * every wait for the next bytes of the body: an idle timeout, so a long but live generation is never cut off
 * while a stalled one is. Interruption (and so the timeout) aborts the HTTP request.
 *
 * Keys: each request takes the next key from `ApiKeys`. A 429, 401/403 or exhausted quota cools that key down
 * and the same call is sent again at once with the next free key, at most once per key (this is not a retry
 * with a wait: waiting belongs to `TurnRetry`). When no free key is left, the server's error is the result.
 */
import * as Sse from "@effect/experimental/Sse"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AiosConfig } from "../AiosConfig.js"
import { ApiKeys } from "../ApiKeys.js"
import type * as ApiKeysModule from "../ApiKeys.js"
import type {
  ChatMessage,
  NativeTool,
  NativeToolCall,
  QueryChunk,
  QueryResult,
  Service,
  Usage
} from "../KernelClient.js"
import { decodeJson, describeIssue, unreachable, withTimeout } from "../KernelClient.js"
import { toolCallArguments } from "./jsonObject.js"
import * as KernelError from "../KernelError.js"
import * as RetryAfter from "../RetryAfter.js"

// ---------------------------------------------------------------------------------------------------------------
// Wire formats (only what we read; everything else in a body is dropped by decoding)
// ---------------------------------------------------------------------------------------------------------------

/** `GET /models`. */
export const ModelsResponse = Schema.Struct({
  data: Schema.Array(Schema.Struct({
    id: Schema.String,
    owned_by: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
  }))
})

/** `POST /chat/completions` body, as we send it. */
export interface ChatCompletionsBody {
  readonly model: string
  readonly messages: ReadonlyArray<ChatMessage>
  readonly stream: true
  readonly stream_options: { readonly include_usage: true }
  readonly tools?: ReadonlyArray<NativeTool>
  readonly max_tokens?: number
  readonly temperature?: number
}

const WireUsage = Schema.Struct({ prompt_tokens: Schema.Number, completion_tokens: Schema.Number })

const ToolCallDeltaWire = Schema.Struct({
  index: Schema.optional(Schema.Int),
  id: Schema.optional(Schema.NullOr(Schema.String)),
  function: Schema.optional(Schema.NullOr(Schema.Struct({
    name: Schema.optional(Schema.NullOr(Schema.String)),
    arguments: Schema.optional(Schema.NullOr(Schema.String))
  })))
})

/** One `data:` event of a streamed completion. */
export const ChatCompletionChunk = Schema.Struct({
  choices: Schema.optionalWith(Schema.NullOr(Schema.Array(Schema.Struct({
    index: Schema.optional(Schema.Int),
    delta: Schema.optional(Schema.NullOr(Schema.Struct({
      content: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(ToolCallDeltaWire)))
    }))),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  }))), { default: () => null }),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

/** A complete (non-streamed) completion, for servers that answer JSON although asked to stream. */
export const ChatCompletion = Schema.Struct({
  choices: Schema.Array(Schema.Struct({
    index: Schema.optional(Schema.Int),
    message: Schema.Struct({
      content: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
        id: Schema.optional(Schema.NullOr(Schema.String)),
        function: Schema.Struct({
          name: Schema.String,
          arguments: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
        })
      }))))
    }),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  })),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

/** OpenAI's error object; some servers send a bare string instead. */
const ErrorObject = Schema.Struct({
  message: Schema.optional(Schema.NullOr(Schema.String)),
  type: Schema.optional(Schema.NullOr(Schema.String)),
  code: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Number))),
  status: Schema.optional(Schema.NullOr(Schema.Number))
})
const ErrorBody = Schema.Struct({ error: Schema.Union(ErrorObject, Schema.String) })
/** FastAPI-style servers answer `{"detail": …}`, others `{"message": …}`. */
const DetailBody = Schema.Struct({ detail: Schema.String })
const MessageBody = Schema.Struct({ message: Schema.String })

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

interface ServerError {
  readonly reason: string
  readonly errorType: string | undefined
  /** A status the body itself names (`error.status`, a numeric `error.code`). */
  readonly status: number | undefined
}

const cap = (text: string): string => (text.length > 300 ? `${text.slice(0, 300)}…` : text)

/** Reads an error body: OpenAI's `{error:{message,type,code}}`, `{error:"…"}`, `{detail}`, `{message}` or text. */
export const serverError = (text: string): ServerError => {
  const json = Either.try(() => JSON.parse(text) as unknown)
  if (Either.isRight(json)) {
    const body = Schema.decodeUnknownOption(ErrorBody)(json.right)
    if (Option.isSome(body)) {
      const error = body.value.error
      if (typeof error === "string") return { reason: cap(error), errorType: undefined, status: undefined }
      const code = error.code ?? undefined
      const numeric = typeof code === "number" ? code : error.status ?? undefined
      return {
        reason: cap(error.message ?? ""),
        // `code` is the more specific of the two in OpenAI's scheme (`rate_limit_exceeded` vs `requests`).
        errorType: (typeof code === "string" && code !== "" ? code : undefined) ?? (error.type || undefined),
        status: numeric !== undefined && numeric >= 400 && numeric <= 599 ? numeric : undefined
      }
    }
    const detail = Schema.decodeUnknownOption(DetailBody)(json.right)
    if (Option.isSome(detail)) return { reason: cap(detail.value.detail), errorType: undefined, status: undefined }
    const message = Schema.decodeUnknownOption(MessageBody)(json.right)
    if (Option.isSome(message)) return { reason: cap(message.value.message), errorType: undefined, status: undefined }
  }
  return { reason: cap(text.trim()), errorType: undefined, status: undefined }
}

const hasError = (value: unknown): boolean =>
  value !== null && typeof value === "object" && "error" in value && value.error !== null && value.error !== undefined

/** Whether a 200 body is an error (`{"error": …}`) rather than a completion. */
const errorInBody = (text: string): boolean => {
  const json = Either.try(() => JSON.parse(text) as unknown)
  return Either.isRight(json) && hasError(json.right)
}

/** The HTTP status an in-stream error stands for, when the event names none. */
const statusOfType = (errorType: string | undefined): number => {
  const type = errorType?.toLowerCase() ?? ""
  if (/rate_limit|too_many_requests|insufficient_quota|^requests$|^tokens$/.test(type)) return 429
  if (/invalid_api_key|authentication/.test(type)) return 401
  if (/permission/.test(type)) return 403
  if (/model_not_found/.test(type)) return 404
  if (/invalid_request|context_length/.test(type)) return 400
  if (/overloaded|unavailable/.test(type)) return 503
  if (/timeout/.test(type)) return 408
  return 500
}

/**
 * Whether a refusal says the endpoint has no native tools (e.g. "tools are not supported", "does not support
 * tool calling"): the caller may then fall back to the tag protocol.
 *
 * @since 0.1.0
 */
export const nativeToolsUnsupported = (error: KernelError.KernelError): boolean => {
  const text = error._tag === "KernelRejected"
    ? error.reason
    : error._tag === "KernelHttpError"
    ? error.detail.join(" ")
    : ""
  const status = error._tag === "KernelRejected" ? error.statusCode : error._tag === "KernelHttpError" ? error.status : 0
  return (status === 400 || status === 422 || status === 501) &&
    /\b(tools?|tool[_ ]choice|tool[_ ]call(ing|s)?|function[_ ]call(ing|s)?)\b[^.]{0,60}\b(not supported|unsupported|does not support|doesn't support)|\b(not support|unsupported|doesn't support|does not support)\w*\b[^.]{0,60}\b(tools?|tool[_ ]call(ing|s)?|function[_ ]call(ing|s)?)\b/i
      .test(text)
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------------------------

/** A pending SSE event may hold at most this many UTF-16 code units (a whole reply fits many times over). */
const maxEventSize = 4 * 1024 * 1024

/**
 * Server-sent events from text, with Effect's SSE parser. `Sse.makeParser` rather than `Sse.makeChannel`:
 * the channel turns an oversized event into a defect and obeys `retry:` by sleeping and reading on, while a
 * chat stream is never reconnected and an oversized event must be a typed error.
 */
const sseEvents = <E>(
  text: Stream.Stream<string, E>,
  tooLarge: () => KernelError.KernelError
): Stream.Stream<Sse.Event, E | KernelError.KernelError> =>
  Stream.suspend(() => {
    let pending: Array<Sse.Event> = []
    const parser = Sse.makeParser((event) => {
      if (event._tag === "Event") pending.push(event)
    }, { maxEventSize })
    return Stream.mapChunksEffect(text, (chunk) => {
      for (const piece of chunk) {
        if (parser.feed(piece) !== undefined) return Effect.fail(tooLarge())
      }
      const out = Chunk.unsafeFromArray(pending)
      pending = []
      return Effect.succeed(out)
    })
  })

type FinishReason = Extract<QueryChunk, { _tag: "Finish" }>["reason"]

const finishReason = (raw: string | null | undefined): FinishReason => {
  switch (raw) {
    case "stop":
    case "eos":
    case "end_turn":
      return "stop"
    case "length":
    case "max_tokens":
      return "length"
    case "tool_calls":
    case "function_call":
    case "tool_use":
      return "tool_calls"
    default:
      return undefined
  }
}

const toUsage = (usage: typeof WireUsage.Type): Usage => ({
  inputTokens: usage.prompt_tokens,
  outputTokens: usage.completion_tokens
})

/** Folds chunks into a complete result; tool-call arguments must be a JSON object (or empty). */
export const collect = (
  chunks: Iterable<QueryChunk>,
  context: { readonly url: string; readonly model: string }
): Either.Either<QueryResult, KernelError.KernelMalformedResponse> => {
  let text = ""
  let finish: FinishReason = undefined
  let usage: Usage | undefined
  const calls = new Map<number, { id: string | undefined; name: string; args: string }>()
  for (const chunk of chunks) {
    switch (chunk._tag) {
      case "TextDelta":
        text += chunk.text
        break
      case "ToolCallDelta": {
        const call = calls.get(chunk.index) ?? { id: undefined, name: "", args: "" }
        calls.set(chunk.index, {
          id: call.id ?? chunk.id,
          name: call.name === "" ? chunk.name ?? "" : call.name,
          args: call.args + chunk.argumentsDelta
        })
        break
      }
      case "Finish":
        finish = chunk.reason
        usage = chunk.usage
    }
  }
  const toolCalls: Array<NativeToolCall> = []
  for (const [, call] of [...calls].sort(([a], [b]) => a - b)) {
    const parsed = toolCallArguments(call.args)
    if (Option.isNone(parsed)) {
      return Either.left(
        new KernelError.KernelMalformedResponse({
          url: context.url,
          model: context.model,
          endpoint: "/chat/completions",
          issue: `the arguments of tool call '${call.name}' are not a JSON object${finish === "length" ? " (the reply was cut at the length limit)" : ""}`
        })
      )
    }
    toolCalls.push({ id: call.id, name: call.name, arguments: parsed.value })
  }
  return Either.right({ model: context.model, text, toolCalls, usage, finishReason: finish })
}

// ---------------------------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------------------------

/**
 * Builds the OpenAI-compatible client.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<Service, never, HttpClient.HttpClient | AiosConfig | ApiKeys> = Effect.gen(function*() {
  const config = yield* AiosConfig
  const keys = yield* ApiKeys
  // Requests live in a scope (the stream's, or the call's): closing it aborts the request.
  const http = HttpClient.withScope(yield* HttpClient.HttpClient)
  const url = config.baseUrl

  /** A transport failure, without the request (whose headers hold the key) in its cause. */
  const transport = (model: string | undefined) => (error: HttpClientError.HttpClientError): KernelError.KernelUnreachable => {
    const mapped = unreachable(url, model)(error)
    return new KernelError.KernelUnreachable({ url, model, detail: mapped.detail, cause: error.cause })
  }

  const rejected = (model: string | undefined, status: number, server: ServerError, retryAfterMs: number | undefined) => {
    const reason = keys.scrub(server.reason)
    return new KernelError.KernelRejected({
      url,
      model,
      statusCode: status,
      kind: KernelError.rejectionKind(status, `${reason} ${server.errorType ?? ""}`, server.errorType),
      reason,
      retryAfterMs,
      errorType: server.errorType
    })
  }

  /** A non-2xx answer as a `KernelRejected`: status, body and Retry-After / retry-after-ms. */
  const refusal = (response: HttpClientResponse.HttpClientResponse, model: string | undefined) =>
    Effect.flatMap(
      Effect.zip(response.text.pipe(Effect.mapError(transport(model))), Clock.currentTimeMillis),
      ([text, now]) =>
        Effect.fail(rejected(model, response.status, serverError(text), Option.getOrUndefined(RetryAfter.parse(response.headers, now))))
    )

  /**
   * Sends `build()` with the next key, moving on to the next free key while the failure is the key's. The
   * response is 2xx; it lives in the surrounding scope.
   */
  const send = (
    build: () => HttpClientRequest.HttpClientRequest,
    model: string | undefined,
    timeoutMs: number
  ): Effect.Effect<
    { readonly response: HttpClientResponse.HttpClientResponse; readonly key: Option.Option<ApiKeysModule.Key> },
    KernelError.KernelError,
    Scope.Scope
  > => {
    const once = (key: Option.Option<ApiKeysModule.Key>) => {
      const request = Option.match(key, {
        onNone: build,
        // The only place a key's value leaves its `Redacted`.
        onSome: (k) => HttpClientRequest.bearerToken(build(), k.value)
      })
      return http.execute(request).pipe(
        Effect.mapError(transport(model)),
        Effect.flatMap((response) =>
          response.status >= 200 && response.status < 300 ? Effect.succeed(response) : refusal(response, model)
        ),
        withTimeout(url, model, timeoutMs)
      )
    }
    const loop = (
      key: Option.Option<ApiKeysModule.Key>,
      tried: ReadonlySet<number>
    ): Effect.Effect<
      { readonly response: HttpClientResponse.HttpClientResponse; readonly key: Option.Option<ApiKeysModule.Key> },
      KernelError.KernelError,
      Scope.Scope
    > =>
      Effect.matchEffect(once(key), {
        onSuccess: (response) =>
          Effect.as(Option.match(key, { onNone: () => Effect.void, onSome: keys.succeeded }), { response, key }),
        onFailure: (error) =>
          Option.match(key, {
            onNone: () => Effect.fail(error),
            onSome: (used) =>
              Effect.flatMap(keys.failed(used, error), (charged) => {
                if (!charged) return Effect.fail(error)
                const nextTried = new Set([...tried, used.index])
                return Effect.flatMap(keys.next(nextTried), (next) =>
                  Option.isSome(next) && next.value.coolingDownMs === 0 ? loop(next, nextTried) : Effect.fail(error))
              })
          })
      })
    return Effect.flatMap(keys.next(), (key) => loop(key, new Set()))
  }

  const get = <A, I>(path: string, schema: Schema.Schema<A, I>) =>
    send(() => HttpClientRequest.get(`${url}${path}`).pipe(HttpClientRequest.acceptJson), undefined, config.requestTimeoutMs)
      .pipe(
        Effect.flatMap(({ response }) =>
          response.text.pipe(Effect.mapError(transport(undefined)), withTimeout(url, undefined, config.requestTimeoutMs))
        ),
        Effect.flatMap(decodeJson(schema, { url, endpoint: path })),
        Effect.scoped
      )

  const listModels: Service["listModels"] = Effect.map(
    get("/models", ModelsResponse),
    (body) => body.data.map((m) => ({ name: m.id, backend: m.owned_by }))
  )

  const status: Service["status"] = Effect.map(get("/models", ModelsResponse), (body) => ({
    ok: true,
    message: `${body.data.length} model${body.data.length === 1 ? "" : "s"} available`,
    inactiveComponents: []
  }))

  /**
   * An error sent with status 200: an SSE error event, or an `{"error": …}` body. Its status is the one it
   * names, else the one its type implies; `key` is charged for it (an in-stream 429 cools the key down).
   */
  const inBodyError = (
    data: string,
    model: string,
    key: Option.Option<ApiKeysModule.Key>
  ): Effect.Effect<never, KernelError.KernelError> => {
    const server = serverError(data)
    const status = server.status ?? statusOfType(server.errorType)
    const error = rejected(model, status, { ...server, reason: server.reason || "the server reported an error" }, undefined)
    return Option.match(key, {
      onNone: () => Effect.fail(error),
      onSome: (used) => Effect.zipRight(keys.failed(used, error), Effect.fail(error))
    })
  }

  /** The chunks of one streamed reply; `key` is charged for an in-stream rate limit. */
  const decodeEvents = (
    events: Stream.Stream<Sse.Event, KernelError.KernelError>,
    model: string,
    key: Option.Option<ApiKeysModule.Key>
  ): Stream.Stream<QueryChunk, KernelError.KernelError> =>
    Stream.suspend(() => {
      let done = false
      let finished = false
      let reason: FinishReason = undefined
      let usage: Usage | undefined
      // Servers that omit `index` on tool-call deltas: a new id starts a new call, anything else continues.
      const ids = new Map<string, number>()
      let lastIndex = -1
      const malformed = (issue: string) =>
        new KernelError.KernelMalformedResponse({ url, model, endpoint: "/chat/completions", issue })

      const streamError = (data: string) => inBodyError(data, model, key)

      const onEvent = (event: Sse.Event): Effect.Effect<ReadonlyArray<QueryChunk>, KernelError.KernelError> => {
        const data = event.data.trim()
        if (event.event === "error") return streamError(data)
        if (data === "") return Effect.succeed([])
        const json = Either.try(() => JSON.parse(data) as unknown)
        if (Either.isLeft(json)) return Effect.fail(malformed("a stream event is not JSON"))
        const value = json.right
        if (hasError(value)) return streamError(data)
        const decoded = Schema.decodeUnknownEither(ChatCompletionChunk)(value)
        if (Either.isLeft(decoded)) return Effect.fail(malformed(`a stream event: ${describeIssue(decoded.left)}`))
        const chunk = decoded.right
        if (chunk.usage) usage = toUsage(chunk.usage)
        const choice = (chunk.choices ?? []).find((c) => (c.index ?? 0) === 0)
        if (choice === undefined) return Effect.succeed([])
        const out: Array<QueryChunk> = []
        const content = choice.delta?.content
        if (content) out.push({ _tag: "TextDelta", text: content })
        for (const call of choice.delta?.tool_calls ?? []) {
          const id = call.id ?? undefined
          let index = call.index
          if (index === undefined) {
            const known = id === undefined ? undefined : ids.get(id)
            index = known ?? (id !== undefined || lastIndex < 0 ? lastIndex + 1 : lastIndex)
          }
          if (id !== undefined) ids.set(id, index)
          lastIndex = Math.max(lastIndex, index)
          out.push({
            _tag: "ToolCallDelta",
            index,
            id,
            name: call.function?.name ?? undefined,
            argumentsDelta: call.function?.arguments ?? ""
          })
        }
        if (choice.finish_reason) {
          finished = true
          reason = finishReason(choice.finish_reason)
        }
        return Effect.succeed(out)
      }

      const end = Stream.suspend((): Stream.Stream<QueryChunk, KernelError.KernelError> =>
        done || finished
          ? Stream.succeed({ _tag: "Finish", reason, usage })
          : Stream.fail(
            new KernelError.KernelUnreachable({ url, model, detail: "the stream ended before the reply finished" })
          )
      )

      return events.pipe(
        Stream.takeWhile((event) => {
          if (event.data.trim() === "[DONE]") done = true
          return !done
        }),
        Stream.mapConcatEffect(onEvent),
        Stream.concat(end)
      )
    })

  const queryStream: Service["queryStream"] = (request) => {
    const model = request.model
    const timeoutMs = request.timeoutMs ?? config.requestTimeoutMs
    if (model.trim() === "") {
      return Stream.fail(
        new KernelError.KernelHttpError({
          url,
          model,
          status: 400,
          detail: ["request not sent: the model name is empty"],
          retryAfterMs: undefined,
          errorType: "invalid_request"
        })
      )
    }
    const body: ChatCompletionsBody = {
      model,
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      ...(request.tools !== undefined && request.tools.length > 0 ? { tools: request.tools } : {}),
      ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {})
    }
    const build = () =>
      HttpClientRequest.post(`${url}/chat/completions`).pipe(
        HttpClientRequest.accept("text/event-stream"),
        HttpClientRequest.bodyUnsafeJson(body)
      )
    return Stream.unwrapScoped(
      Effect.map(send(build, model, timeoutMs), ({ key, response }) => {
        const contentType = response.headers["content-type"] ?? ""
        if (/application\/json/i.test(contentType)) {
          // A server that does not stream: one JSON completion, told as the chunks a stream would have had.
          return Stream.unwrap(
            response.text.pipe(
              Effect.mapError(transport(model)),
              withTimeout(url, model, timeoutMs),
              Effect.flatMap((text): Effect.Effect<typeof ChatCompletion.Type, KernelError.KernelError> =>
                errorInBody(text)
                  ? inBodyError(text, model, key)
                  : decodeJson(ChatCompletion, { url, endpoint: "/chat/completions", model })(text)
              ),
              Effect.map((completion) => Stream.fromIterable(completionChunks(completion)))
            )
          )
        }
        const text = response.stream.pipe(
          Stream.mapError(transport(model)),
          Stream.timeoutFail(() => new KernelError.KernelTimeout({ url, model, timeoutMs }), Duration.millis(timeoutMs)),
          Stream.decodeText()
        )
        const events = sseEvents(text, () =>
          new KernelError.KernelMalformedResponse({
            url,
            model,
            endpoint: "/chat/completions",
            issue: `a stream event is larger than ${maxEventSize} characters`
          }))
        return decodeEvents(events, model, key)
      })
    )
  }

  const query: Service["query"] = (request) =>
    Effect.flatMap(Stream.runCollect(queryStream(request)), (chunks) => collect(chunks, { url, model: request.model }))

  return { url, backend: "openai-compatible", streaming: true, status, listModels, query, queryStream } satisfies Service
})

/** A complete completion as stream chunks. */
const completionChunks = (completion: typeof ChatCompletion.Type): ReadonlyArray<QueryChunk> => {
  const choice = completion.choices.find((c) => (c.index ?? 0) === 0)
  const text = choice?.message.content ?? ""
  return [
    ...(text.length > 0 ? [{ _tag: "TextDelta" as const, text }] : []),
    ...(choice?.message.tool_calls ?? []).map((call, index) => ({
      _tag: "ToolCallDelta" as const,
      index,
      id: call.id ?? undefined,
      name: call.function.name,
      argumentsDelta: call.function.arguments ?? ""
    })),
    {
      _tag: "Finish" as const,
      reason: finishReason(choice?.finish_reason),
      usage: completion.usage ? toUsage(completion.usage) : undefined
    }
  ]
}
