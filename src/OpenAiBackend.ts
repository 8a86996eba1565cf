/**
 * The `Backend` service over an OpenAI-compatible `/v1` endpoint (OpenAI, `aimo chat --serve`, vLLM, llama.cpp,
 * Ollama, …): models from `GET {baseUrl}/models`, chat over `POST {baseUrl}/chat/completions` with
 * `stream: true`, decoded from server-sent events; a server that answers JSON instead is read as one completion.
 *
 * Timeout: `requestTimeoutMs` (or `Request.timeoutMs`) bounds the wait for the response head and then every wait
 * for the next bytes of the body: an idle timeout, so a long but live generation is never cut off while a stalled
 * one is. Interruption (and so the timeout) aborts the HTTP request.
 *
 * Keys: each request takes the next key from `ApiKeys`. A failure whose kind cools a key down
 * (`BackendError.policies`) sends the same call again at once with the next free key, at most once per key (not
 * a retry with a wait: waiting belongs to `TurnRetry`). When no free key is left, the server's error is the result.
 *
 * @since 0.2.0
 */
import * as Sse from "@effect/experimental/Sse"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AiosConfig from "./AiosConfig.js"
import * as ApiKeys from "./ApiKeys.js"
import * as Backend from "./Backend.js"
import * as BackendError from "./BackendError.js"
import * as Http from "./internal/http.js"

// ---------------------------------------------------------------------------------------------------------------
// Wire formats (only what we read; everything else in a body is dropped by decoding)
// ---------------------------------------------------------------------------------------------------------------

/** `GET /models`. */
const ModelsResponse = Schema.Struct({
  data: Schema.Array(Schema.Struct({
    id: Schema.String,
    owned_by: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
  }))
})

/** `POST /chat/completions` body, as we send it. */
interface ChatCompletionsBody {
  readonly model: string
  readonly messages: ReadonlyArray<Backend.Message>
  readonly stream: true
  readonly stream_options: { readonly include_usage: true }
  readonly tools?: ReadonlyArray<Http.WireTool>
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
const ChatCompletionChunk = Schema.Struct({
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
const ChatCompletion = Schema.Struct({
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

/** What an error body says. */
interface ServerError {
  readonly reason: string
  readonly errorType: string | undefined
  /** A status the body itself names (`error.status`, a numeric `error.code`). */
  readonly status: number | undefined
}

const parseJson = (text: string): Option.Option<unknown> => Either.getRight(Either.try(() => JSON.parse(text) as unknown))

/** Reads an error body: OpenAI's `{error:{message,type,code}}`, `{error:"…"}`, `{detail}`, `{message}` or text. */
const serverError = (text: string): ServerError => {
  const plain = (reason: string): ServerError => ({ reason: Http.cap(reason), errorType: undefined, status: undefined })
  const json = parseJson(text)
  if (Option.isNone(json)) return plain(text.trim())
  const body = Schema.decodeUnknownOption(ErrorBody)(json.value)
  if (Option.isSome(body)) {
    const error = body.value.error
    if (typeof error === "string") return plain(error)
    const code = error.code ?? undefined
    const numeric = typeof code === "number" ? code : error.status ?? undefined
    return {
      reason: Http.cap(error.message ?? ""),
      // `code` is the more specific of the two in OpenAI's scheme (`rate_limit_exceeded` vs `requests`).
      errorType: (typeof code === "string" && code !== "" ? code : undefined) ?? (error.type || undefined),
      status: numeric !== undefined && numeric >= 400 && numeric <= 599 ? numeric : undefined
    }
  }
  const detail = Schema.decodeUnknownOption(DetailBody)(json.value)
  if (Option.isSome(detail)) return plain(detail.value.detail)
  const message = Schema.decodeUnknownOption(MessageBody)(json.value)
  return plain(Option.isSome(message) ? message.value.message : text.trim())
}

const hasError = (value: unknown): boolean =>
  value !== null && typeof value === "object" && "error" in value && value.error !== null && value.error !== undefined

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

// ---------------------------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------------------------

/** A pending SSE event may hold at most this many UTF-16 code units (a whole reply fits many times over). */
const maxEventSize = 4 * 1024 * 1024

/**
 * Server-sent events from text, with Effect's SSE parser. `Sse.makeParser` rather than `Sse.makeChannel`: the
 * channel turns an oversized event into a defect and obeys `retry:` by sleeping and reading on, while a chat
 * stream is never reconnected and an oversized event must be a typed error.
 */
const sseEvents = <E>(
  text: Stream.Stream<string, E>,
  tooLarge: () => BackendError.BackendError
): Stream.Stream<Sse.Event, E | BackendError.BackendError> =>
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

// What servers call the end of a reply; anything else is no reason given.
const finishReasons = new Map<string, Backend.FinishReason>([
  ["stop", "stop"], ["eos", "stop"], ["end_turn", "stop"],
  ["length", "length"], ["max_tokens", "length"],
  ["tool_calls", "toolUse"], ["function_call", "toolUse"], ["tool_use", "toolUse"]
])

const finishReason = (raw: string | null | undefined): Backend.FinishReason | undefined =>
  raw == null ? undefined : finishReasons.get(raw)

const toUsage = (usage: typeof WireUsage.Type): Backend.Usage =>
  Backend.reportedUsage(usage.prompt_tokens, usage.completion_tokens)

/** What the decoder knows between events. */
interface Decoding {
  readonly finished: boolean
  readonly reason: Backend.FinishReason | undefined
  readonly usage: Backend.Usage | undefined
  /** For servers that omit `index` on tool-call deltas: a new id starts a new call, anything else continues. */
  readonly ids: ReadonlyMap<string, number>
  readonly lastIndex: number
}

const start: Decoding = { finished: false, reason: undefined, usage: undefined, ids: new Map(), lastIndex: -1 }

/** Marks the end of the body, so the decoder can tell a finished reply from a cut one. */
const End = { _tag: "End" } as const

/** A complete completion as stream chunks. */
const completionChunks = (completion: typeof ChatCompletion.Type): ReadonlyArray<Backend.Chunk> => {
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

// ---------------------------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------------------------

/**
 * What this backend can do: stream, over `/chat/completions`.
 *
 * @since 0.2.0
 */
export const capabilities: Backend.Capabilities = {
  streams: true,
  protocol: "openai-compatible",
  callEndpoint: "/chat/completions"
}

type Sent = { readonly response: HttpClientResponse.HttpClientResponse; readonly key: Option.Option<ApiKeys.Key> }

/**
 * Builds the OpenAI-compatible backend.
 *
 * @since 0.2.0
 */
export const make: Effect.Effect<
  Backend.Service,
  never,
  HttpClient.HttpClient | AiosConfig.AiosConfig | ApiKeys.ApiKeys
> = Effect.gen(function*() {
  const config = yield* AiosConfig.AiosConfig
  const keys = yield* ApiKeys.ApiKeys
  // Requests live in a scope (the stream's, or the call's): closing it aborts the request.
  const http = HttpClient.withScope(yield* HttpClient.HttpClient)
  const url = config.baseUrl
  const endpoint = capabilities.callEndpoint

  /** A refusal; the server's text loses any key it echoes. */
  const rejected = (
    model: string | undefined,
    status: number,
    server: ServerError,
    fields: { readonly inBody: boolean; readonly retryAfterMs?: number | undefined }
  ) => BackendError.rejected({ url, model, status, reason: keys.scrub(server.reason), errorType: server.errorType, ...fields })

  /** A non-2xx answer as a `BackendRejected`: status, body and Retry-After / retry-after-ms. */
  const refusal = (response: HttpClientResponse.HttpClientResponse, model: string | undefined) =>
    Effect.flatMap(
      Effect.zip(Http.readText(response, { url, model }), Http.retryAfter(response)),
      ([text, retryAfterMs]) => Effect.fail(rejected(model, response.status, serverError(text), { inBody: false, retryAfterMs }))
    )

  /**
   * Sends `build()` with the next key, moving on to the next free key while the failure is the key's. The
   * response is 2xx; it lives in the surrounding scope.
   */
  const send = (
    build: () => HttpClientRequest.HttpClientRequest,
    model: string | undefined,
    timeoutMs: number
  ): Effect.Effect<Sent, BackendError.BackendError, Scope.Scope> => {
    const once = (key: Option.Option<ApiKeys.Key>) =>
      Effect.suspend(() =>
        // The only place a key's value leaves its `Redacted`.
        http.execute(Option.match(key, { onNone: build, onSome: (k) => HttpClientRequest.bearerToken(build(), k.value) }))
      ).pipe(
        Effect.mapError(Http.unreachable({ url, model })),
        Effect.flatMap((response) =>
          response.status >= 200 && response.status < 300 ? Effect.succeed(response) : refusal(response, model)
        ),
        Http.timeout({ url, model }, timeoutMs)
      )
    const loop = (key: Option.Option<ApiKeys.Key>, tried: ReadonlySet<number>): Effect.Effect<Sent, BackendError.BackendError, Scope.Scope> =>
      Effect.matchEffect(once(key), {
        onSuccess: (response) => Effect.as(Option.match(key, { onNone: () => Effect.void, onSome: keys.succeeded }), { response, key }),
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

  const models = send(() => HttpClientRequest.get(`${url}/models`).pipe(HttpClientRequest.acceptJson), undefined, config.requestTimeoutMs)
    .pipe(
      Effect.flatMap(({ response }) => Http.timeout({ url }, config.requestTimeoutMs)(Http.readText(response, { url }))),
      Effect.flatMap(Http.decodeJson(ModelsResponse, { url, endpoint: "/models" })),
      Effect.scoped
    )

  const listModels: Backend.Service["listModels"] = Effect.map(models, (body) =>
    body.data.map((m) => ({ name: m.id, backend: m.owned_by })))

  const status: Backend.Service["status"] = Effect.map(models, (body) => ({
    ok: true,
    message: `${body.data.length} model${body.data.length === 1 ? "" : "s"} available`,
    inactiveComponents: []
  }))

  /**
   * An error sent with status 200: an SSE error event, or an `{"error": …}` body. Its status is the one it names,
   * else the one its type implies; `key` is charged for it (an in-stream 429 cools the key down).
   */
  const inBodyError = (data: string, model: string, key: Option.Option<ApiKeys.Key>): Effect.Effect<never, BackendError.BackendError> => {
    const server = serverError(data)
    const status = server.status ?? statusOfType(server.errorType)
    const error = rejected(model, status, { ...server, reason: server.reason || "the server reported an error" }, { inBody: true })
    return Option.match(key, {
      onNone: () => Effect.fail(error),
      onSome: (used) => Effect.zipRight(keys.failed(used, error), Effect.fail(error))
    })
  }

  /** The chunks of one streamed reply, a state machine over its events; `Finish` comes at `[DONE]` or the end. */
  const decodeEvents = (
    events: Stream.Stream<Sse.Event, BackendError.BackendError>,
    model: string,
    key: Option.Option<ApiKeys.Key>
  ): Stream.Stream<Backend.Chunk, BackendError.BackendError> => {
    const malformed = (issue: string) => new BackendError.MalformedResponse({ url, model, endpoint, issue })
    const decode = Schema.decodeUnknownEither(ChatCompletionChunk)
    const finish = (s: Decoding): Backend.Chunk => ({ _tag: "Finish", reason: s.reason, usage: s.usage })

    const step = (
      s: Decoding,
      input: Sse.Event | typeof End
    ): Effect.Effect<readonly [Decoding, ReadonlyArray<Backend.Chunk>], BackendError.BackendError> => {
      if (input._tag === "End") {
        return s.finished
          ? Effect.succeed([s, [finish(s)]])
          : Effect.fail(new BackendError.BackendUnreachable({ url, model, detail: "the stream ended before the reply finished" }))
      }
      const data = input.data.trim()
      if (input.event === "error") return inBodyError(data, model, key)
      if (data === "") return Effect.succeed([s, []])
      if (data === "[DONE]") return Effect.succeed([s, [finish(s)]])
      const json = parseJson(data)
      if (Option.isNone(json)) return Effect.fail(malformed("a stream event is not JSON"))
      if (hasError(json.value)) return inBodyError(data, model, key)
      const decoded = decode(json.value)
      if (Either.isLeft(decoded)) return Effect.fail(malformed(`a stream event: ${Http.describeIssue(decoded.left)}`))
      const usage = decoded.right.usage ? toUsage(decoded.right.usage) : s.usage
      const choice = (decoded.right.choices ?? []).find((c) => (c.index ?? 0) === 0)
      if (choice === undefined) return Effect.succeed([{ ...s, usage }, []])
      const out: Array<Backend.Chunk> = []
      const content = choice.delta?.content
      if (content) out.push({ _tag: "TextDelta", text: content })
      let ids = s.ids
      let lastIndex = s.lastIndex
      for (const call of choice.delta?.tool_calls ?? []) {
        const id = call.id ?? undefined
        const index = call.index ??
          (id === undefined ? undefined : ids.get(id)) ??
          (id !== undefined || lastIndex < 0 ? lastIndex + 1 : lastIndex)
        if (id !== undefined) ids = new Map(ids).set(id, index)
        lastIndex = Math.max(lastIndex, index)
        out.push({
          _tag: "ToolCallDelta",
          index,
          id,
          name: call.function?.name ?? undefined,
          argumentsDelta: call.function?.arguments ?? ""
        })
      }
      const finished = s.finished || Boolean(choice.finish_reason)
      const reason = choice.finish_reason ? finishReason(choice.finish_reason) : s.reason
      return Effect.succeed([{ finished, reason, usage, ids, lastIndex }, out])
    }

    return Stream.concat(events, Stream.succeed(End)).pipe(
      Stream.mapAccumEffect(start, step),
      Stream.flattenIterables,
      // `[DONE]` ends the reply: what follows (if anything) is not read.
      Stream.takeUntil((chunk) => chunk._tag === "Finish")
    )
  }

  const stream: Backend.Service["stream"] = (request) => {
    const model = request.model
    const blank = Http.blankModel(url, model)
    if (blank !== undefined) return Stream.fail(blank)
    const target = { url, model }
    const timeoutMs = request.timeoutMs ?? config.requestTimeoutMs
    const body: ChatCompletionsBody = {
      model,
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      ...(request.tools !== undefined && request.tools.length > 0 ? { tools: request.tools.map(Http.wireTool) } : {}),
      ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {})
    }
    // Encoded once per call; each key's attempt builds a fresh request around it.
    const payload = HttpBody.unsafeJson(body)
    const build = () =>
      HttpClientRequest.post(`${url}${endpoint}`).pipe(
        HttpClientRequest.accept("text/event-stream"),
        HttpClientRequest.setBody(payload)
      )
    return Stream.unwrapScoped(
      Effect.map(send(build, model, timeoutMs), ({ key, response }): Stream.Stream<Backend.Chunk, BackendError.BackendError> => {
        if (/application\/json/i.test(response.headers["content-type"] ?? "")) {
          // A server that does not stream: one JSON completion, told as the chunks a stream would have had.
          const decode = Http.decodeJson(ChatCompletion, { ...target, endpoint })
          return Stream.fromIterableEffect(
            Http.readText(response, target).pipe(
              Http.timeout(target, timeoutMs),
              Effect.flatMap((text) => (Option.exists(parseJson(text), hasError) ? inBodyError(text, model, key) : decode(text))),
              Effect.map(completionChunks)
            )
          )
        }
        const text = response.stream.pipe(
          Stream.mapError(Http.unreachable(target)),
          Http.idleTimeout(target, timeoutMs),
          Stream.decodeText()
        )
        const tooLarge = () =>
          new BackendError.MalformedResponse({ ...target, endpoint, issue: `a stream event is larger than ${maxEventSize} characters` })
        return decodeEvents(sseEvents(text, tooLarge), model, key)
      })
    )
  }

  return { url, capabilities, status, listModels, stream } satisfies Backend.Service
})

/**
 * The OpenAI-compatible backend, with key rotation over `AiosConfig.apiKeys`.
 *
 * @since 0.2.0
 */
export const layer: Layer.Layer<Backend.Backend, never, HttpClient.HttpClient | AiosConfig.AiosConfig> = Layer.effect(
  Backend.Backend,
  make
).pipe(Layer.provide(ApiKeys.layer))

/**
 * The OpenAI-compatible backend configured from the environment (`AIOS_URL`, `AIOS_API_KEYS`, …) over
 * `options`; see `AiosConfig.layerConfig`.
 *
 * @since 0.2.0
 */
export const layerConfig = (
  options?: AiosConfig.AiosConfigInput
): Layer.Layer<Backend.Backend, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.provide(layer, AiosConfig.layerConfig(options))
