/**
 * The `Backend` service over an OpenAI-compatible `/v1` endpoint (OpenAI, `aimo chat --serve`, vLLM, llama.cpp,
 * Ollama, …): models from `GET {baseUrl}/models`, chat over `POST {baseUrl}/chat/completions` with
 * `stream: true`, decoded from server-sent events (`internal/openAi/sse.ts`); a server that answers JSON instead
 * is read as one completion. Reasoning (`reasoning_content` or `reasoning` deltas) comes as `ReasoningDelta`s.
 *
 * Timeouts: `requestTimeoutMs` (or `Request.timeoutMs`) bounds the wait for the response head and then every
 * wait for the next bytes of the body: an idle timeout, so a long but live generation is never cut off while a
 * stalled one is. `callTimeoutMs` bounds the whole call, so no byte pattern (a body trickled a byte at a time,
 * keep-alive comments forever) keeps it open past that; the turn's deadline (`Request.deadline`), when sooner, takes
 * its place under the same timer. A stream whose final `finish_reason` came but no `[DONE]` ends as a success a
 * second later (`finishGraceMs`). Interruption (and so a timeout) aborts the HTTP request. A body over
 * `maxResponseBytes` is `MalformedResponse`, and its reading stops.
 *
 * Keys: each request takes the next key from `ApiKeys`. A failure whose kind cools a key down
 * (`BackendError.policies`) sends the same call again at once with the next free key, at most once per key (not
 * a retry with a wait: waiting belongs to `TurnRetry`). When no free key is left, the server's error is the result.
 * The server's words in an error lose every key and every credential of the configured URL.
 *
 * @since 0.2.0
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AiosConfig from "./AiosConfig.js"
import * as ApiKeys from "./ApiKeys.js"
import * as Backend from "./Backend.js"
import * as BackendError from "./BackendError.js"
import * as Http from "./internal/http.js"
import * as ModelList from "./internal/modelList.js"
import * as Sse from "./internal/openAi/sse.js"
import * as Wire from "./internal/openAi/wire.js"
import * as Redact from "./internal/redact.js"

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
  // Requests go to `base`; everything printed names `url`, without the credentials `base` may hold.
  const base = config.baseUrl
  const url = Redact.url(base)
  const endpoint = capabilities.callEndpoint
  const secrets = Redact.add(Redact.empty, [...Redact.ofUrl(base), ...config.apiKeys.map(Redacted.value)])
  const lastSkipped = yield* Ref.make("")

  /** A server's words as they may be printed: the rotation's keys go first, over the whole text. */
  const quote = (text: string): string => Redact.quote(keys.scrub(text), secrets)

  /** A refusal, the server's words quoted. */
  const rejected = (
    model: string | undefined,
    status: number,
    server: Wire.ServerError,
    fields: { readonly inBody: boolean; readonly retryAfterMs?: number | undefined }
  ) => BackendError.rejected({ url, model, status, reason: quote(server.reason), errorType: server.errorType, ...fields })

  /** A non-2xx answer as a `BackendRejected`: status, the start of the body, and Retry-After / retry-after-ms. */
  const refusal = (response: HttpClientResponse.HttpClientResponse, model: string | undefined) =>
    Effect.flatMap(
      Effect.zip(
        Http.readPrefix(response, { url, model }, Math.min(Http.errorBodyBytes, config.maxResponseBytes)),
        Http.retryAfter(response)
      ),
      ([text, retryAfterMs]) => Effect.fail(rejected(model, response.status, Wire.serverError(text), { inBody: false, retryAfterMs }))
    )

  /**
   * Sends `build()` with the next key, moving on to the next free key while the failure is the key's. The
   * response is 2xx; it lives in the surrounding scope.
   */
  const send = (
    build: () => HttpClientRequest.HttpClientRequest,
    model: string | undefined,
    bounds: Http.Limits
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
        Http.within({ url, model }, bounds)
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

  const modelsTarget = { url, endpoint: "/models" }
  const models = Http.limits(config.requestTimeoutMs, config.callTimeoutMs).pipe(
    Effect.flatMap((bounds) =>
      send(() => HttpClientRequest.get(`${base}/models`).pipe(HttpClientRequest.acceptJson), undefined, bounds).pipe(
        Effect.flatMap(({ response }) =>
          Http.within(modelsTarget, bounds)(Http.readText(response, modelsTarget, config.maxResponseBytes))
        )
      )
    ),
    Effect.scoped,
    Effect.flatMap(Http.decodeJson(Wire.ModelsResponse, modelsTarget)),
    Effect.flatMap((body) => {
      const checked = ModelList.check(body.data, "id", "owned_by")
      return checked.total > 0 && checked.models.length === 0
        ? Effect.fail(new BackendError.MalformedResponse({ ...modelsTarget, issue: ModelList.noneUsable(checked) }))
        : Effect.succeed(checked)
    })
  )

  const listModels: Backend.Service["listModels"] = Effect.gen(function*() {
    const checked = yield* models
    const warning = checked.skipped.length > 0 ? ModelList.warning("/models", checked) : ""
    // Said once, not on every refresh of the same list.
    if (warning !== (yield* Ref.getAndSet(lastSkipped, warning)) && warning !== "") {
      yield* Effect.logWarning(warning).pipe(Effect.annotateLogs({ url }))
    }
    return checked.models
  })

  const status: Backend.Service["status"] = Effect.map(models, ({ models }) => ({
    ok: true,
    message: `${models.length} model${models.length === 1 ? "" : "s"} available`,
    inactiveComponents: []
  }))

  /**
   * An error sent with status 200: an SSE error event, or an `{"error": …}` body. Its status is the one it names,
   * else the one its type implies; `key` is charged for it (an in-stream 429 cools the key down).
   */
  const inBodyError = (data: string, model: string, key: Option.Option<ApiKeys.Key>): Effect.Effect<never, BackendError.BackendError> => {
    const server = Wire.serverError(data)
    const status = server.status ?? Wire.statusOfType(server.errorType)
    const error = rejected(model, status, { ...server, reason: server.reason || "the server reported an error" }, { inBody: true })
    return Option.match(key, {
      onNone: () => Effect.fail(error),
      onSome: (used) => Effect.zipRight(keys.failed(used, error), Effect.fail(error))
    })
  }

  /** The reply of one 2xx response: server-sent events, or one JSON completion from a server that does not stream. */
  const reply = (
    { key, response }: Sent,
    target: Sse.Context["target"],
    bounds: Http.Limits,
    finishedAt: Ref.Ref<number | undefined>
  ): Stream.Stream<Backend.Chunk, BackendError.BackendError> => {
    if (/application\/json/i.test(response.headers["content-type"] ?? "")) {
      const decode = Http.decodeJson(Wire.ChatCompletion, target)
      return Stream.fromIterableEffect(
        Http.readText(response, target, config.maxResponseBytes).pipe(
          Http.within(target, bounds),
          Effect.flatMap((text) =>
            Option.exists(Wire.parseJson(text), Wire.hasError) ? inBodyError(text, target.model, key) : decode(text)
          ),
          Effect.map(Wire.completionChunks)
        )
      )
    }
    const text = response.stream.pipe(
      Stream.mapError(Http.unreachable(target)),
      Http.bodyWithin(target, bounds, finishedAt, Sse.finishGraceMs),
      Http.capBytes(target, config.maxResponseBytes),
      Stream.decodeText()
    )
    return Sse.decode(text, { target, finishedAt, inBodyError: (data) => inBodyError(data, target.model, key) })
  }

  const stream: Backend.Service["stream"] = (request) => {
    const model = request.model
    const blank = Http.blankModel(url, model)
    if (blank !== undefined) return Stream.fail(blank)
    const target = { url, model, endpoint }
    const timeoutMs = request.timeoutMs ?? config.requestTimeoutMs
    const body: Wire.ChatCompletionsBody = {
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
      HttpClientRequest.post(`${base}${endpoint}`).pipe(
        HttpClientRequest.accept("text/event-stream"),
        HttpClientRequest.setBody(payload)
      )
    // Per run (a retry runs the stream again): the call's deadline starts now.
    return Stream.unwrapScoped(
      Effect.gen(function*() {
        const bounds = yield* Http.limits(timeoutMs, config.callTimeoutMs, request.deadline)
        const finishedAt = yield* Ref.make<number | undefined>(undefined)
        return reply(yield* send(build, model, bounds), target, bounds, finishedAt)
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
