/**
 * The `Backend` service over an AIOS kernel's HTTP API (`/status`, `/core/llms/list`, `/query`), with the wire
 * formats as Schemas beside it. The kernel answers a call in one piece, so `stream` gives the whole reply as
 * chunks once it is in. Every call has one client timeout (the kernel has none, and can hang), the shortest of
 * `requestTimeoutMs`, `callTimeoutMs` and the turn's deadline (`Request.deadline`), naming the one that applied; its
 * body is read within `maxResponseBytes`, and interruption aborts the HTTP request. The kernel reports most
 * failures inside an HTTP 200 body (`response.status_code`): they fail as `BackendRejected` with `inBody: true`,
 * the kernel's words cleared of every secret the client knows (the URL's userinfo, the values `/core/llms/list`
 * revealed).
 *
 * The kernel discards `max_new_tokens` and `temperature`. `maxTokens` is applied here instead: a longer reply is
 * cut at the budget (about 4 characters a token, as `Backend.estimateTokens` counts) and finishes with reason
 * `length`. `temperature` cannot be: the first call of each model that sets it logs one warning.
 *
 * @since 0.2.0
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as AiosConfig from "./AiosConfig.js"
import * as Backend from "./Backend.js"
import * as BackendError from "./BackendError.js"
import * as Http from "./internal/http.js"
import { jsonObject } from "./internal/jsonObject.js"
import * as ModelList from "./internal/modelList.js"
import * as Redact from "./internal/redact.js"

// ---------------------------------------------------------------------------------------------------------------
// Wire formats
// ---------------------------------------------------------------------------------------------------------------

/**
 * `GET /status`.
 *
 * @since 0.2.0
 */
export const StatusResponse = Schema.Struct({
  status: Schema.String,
  message: Schema.optional(Schema.String),
  inactive_components: Schema.optional(Schema.Array(Schema.String))
})

/**
 * One kept entry of `GET /core/llms/list`: a usable `name` (non-blank, printable, at most 256 characters) and
 * its `backend`. Every other key (`api_key`, `hostname`, …) is dropped once its values are noted as secrets.
 *
 * @since 0.2.0
 */
export const LlmEntry = Schema.Struct({
  name: Schema.String,
  backend: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})

/**
 * `GET /core/llms/list`. The entries are checked one by one (see `LlmEntry`): a bad entry is skipped, with a
 * warning, rather than failing the list.
 *
 * @since 0.2.0
 */
export const LlmsListResponse = Schema.Struct({
  status: Schema.String,
  message: Schema.optional(Schema.String),
  llms: Schema.Array(Schema.Unknown)
})

/**
 * The `action_type`s the kernel accepts; anything else is HTTP 422.
 *
 * @since 0.2.0
 */
export const ActionType = Schema.Literal(
  "chat",
  "chat_with_json_output",
  "chat_with_tool_call_output",
  "call_tool",
  "operate_file"
)

/**
 * `POST /query` body.
 *
 * @since 0.2.0
 */
export const QueryRequestBody = Schema.Struct({
  agent_name: Schema.String,
  query_type: Schema.Literal("llm"),
  query_data: Schema.Struct({
    messages: Schema.Array(Backend.Message),
    // An entry without a name hangs the real kernel: the Schema refuses it (and `stream` checks it before sending).
    llms: Schema.NonEmptyArray(Schema.Struct({ name: Schema.NonEmptyTrimmedString, backend: Schema.optional(Schema.String) })),
    tools: Schema.Array(Http.WireTool),
    action_type: ActionType,
    message_return_type: Schema.Literal("text", "json"),
    max_new_tokens: Schema.optional(Schema.Int),
    temperature: Schema.optional(Schema.Number)
  })
})
export type QueryRequestBody = typeof QueryRequestBody.Type

/**
 * A native tool call as the kernel returns it (`/` in names travels as `__`).
 *
 * @since 0.2.0
 */
export const WireToolCall = Schema.Struct({
  name: Schema.String,
  parameters: Schema.optionalWith(Schema.Union(Schema.Record({ key: Schema.String, value: Schema.Unknown }), Schema.String), {
    default: () => ({})
  }),
  id: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * `POST /query` response envelope; HTTP 200 even for failures, which are in `response.status_code`.
 *
 * @since 0.2.0
 */
export const QueryResponseBody = Schema.Struct({
  response: Schema.Struct({
    response_class: Schema.optional(Schema.String),
    response_message: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
    tool_calls: Schema.optionalWith(Schema.NullOr(Schema.Array(WireToolCall)), { default: () => null }),
    finished: Schema.optional(Schema.Boolean),
    error: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
    status_code: Schema.optionalWith(Schema.Int, { default: () => 200 })
  })
})

/**
 * FastAPI's 422 body.
 *
 * @since 0.2.0
 */
export const ValidationErrorBody = Schema.Struct({
  detail: Schema.Array(Schema.Struct({ loc: Schema.optional(Schema.Array(Schema.Union(Schema.String, Schema.Number))), msg: Schema.String }))
})

/**
 * FastAPI's 500 body.
 *
 * @since 0.2.0
 */
export const DetailBody = Schema.Struct({ detail: Schema.String })

// ---------------------------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------------------------

/**
 * What this backend can do: one piece per reply, over `/query`.
 *
 * @since 0.2.0
 */
export const capabilities: Backend.Capabilities = { streams: false, protocol: "aios", callEndpoint: "/query" }

/** FastAPI's error detail as readable text: `body.query_data.action_type: Input should be …; …`. */
const httpReason = (text: string): string => {
  const json = Either.try(() => JSON.parse(text) as unknown)
  if (Either.isRight(json)) {
    const validation = Schema.decodeUnknownOption(ValidationErrorBody)(json.right)
    if (Option.isSome(validation)) {
      return validation.value.detail.map((d) => (d.loc && d.loc.length > 0 ? `${d.loc.join(".")}: ${d.msg}` : d.msg)).join("; ")
    }
    const detail = Schema.decodeUnknownOption(DetailBody)(json.right)
    if (Option.isSome(detail)) return detail.value.detail
  }
  return text.trim()
}

/** A call's arguments: the kernel sends an object, or (some providers) a JSON string, or plain text. */
const toolArguments = (parameters: Readonly<Record<string, unknown>> | string): string =>
  JSON.stringify(typeof parameters !== "string" ? parameters : Option.getOrElse(jsonObject(parameters), () => ({ input: parameters })))

/**
 * `text` cut to a budget of `maxTokens` (about 4 characters a token, as `Backend.estimateTokens` counts, never
 * half a surrogate pair), or `undefined` when it fits.
 *
 * @since 0.2.0
 */
export const cutToBudget = (text: string, maxTokens: number): string | undefined => {
  const chars = Math.max(0, Math.floor(maxTokens)) * 4
  if (text.length <= chars) return undefined
  const code = text.charCodeAt(chars - 1)
  return text.slice(0, chars > 0 && code >= 0xd800 && code <= 0xdbff ? chars - 1 : chars)
}

/**
 * A successful reply as the chunks of a stream: its text (cut to `maxTokens`), its native calls, `Finish` (the
 * kernel gives no reason; `length` when the budget cut the text).
 */
const chunksOf = (
  response: typeof QueryResponseBody.Type["response"],
  maxTokens: number | undefined
): ReadonlyArray<Backend.Chunk> => {
  const whole = response.response_message ?? ""
  const cut = maxTokens === undefined ? undefined : cutToBudget(whole, maxTokens)
  const text = cut ?? whole
  return [
    ...(text.length > 0 ? [{ _tag: "TextDelta" as const, text }] : []),
    ...(response.tool_calls ?? []).map((call, index) => ({
      _tag: "ToolCallDelta" as const,
      index,
      id: call.id ?? undefined,
      name: call.name.replaceAll("__", "/"),
      argumentsDelta: toolArguments(call.parameters)
    })),
    { _tag: "Finish", reason: cut === undefined ? undefined : "length", usage: undefined }
  ]
}

/**
 * Builds the AIOS backend over an `HttpClient`.
 *
 * @since 0.2.0
 */
export const make: Effect.Effect<Backend.Service, never, HttpClient.HttpClient | AiosConfig.AiosConfig> = Effect.gen(
  function*() {
    const config = yield* AiosConfig.AiosConfig
    // Each request lives as long as its call's scope: closing it (the timeout, an interruption) aborts it.
    const http = HttpClient.withScope(yield* HttpClient.HttpClient)
    // Requests go to `base`; everything printed names `url`, without the credentials `base` may hold.
    const base = config.baseUrl
    const url = Redact.url(base)
    const secrets = yield* Ref.make(Redact.add(Redact.empty, Redact.ofUrl(base)))
    const lastSkipped = yield* Ref.make("")
    const warnedTemperature = yield* Ref.make<ReadonlySet<string>>(new Set())

    /** The kernel's words as they may be printed. */
    const quote = (text: string) => Effect.map(Ref.get(secrets), (known) => Redact.quote(text, known))

    /** The body of a 200 (within `maxResponseBytes`), or the refusal a non-200 stands for. */
    const readBody = (
      response: HttpClientResponse.HttpClientResponse,
      target: Http.Target
    ): Effect.Effect<string, BackendError.BackendError> =>
      response.status === 200
        ? Http.readText(response, target, config.maxResponseBytes)
        : Effect.flatMap(
          Effect.zip(
            Http.readPrefix(response, target, Math.min(Http.errorBodyBytes, config.maxResponseBytes)),
            Http.retryAfter(response)
          ),
          ([text, retryAfterMs]) =>
            Effect.flatMap(quote(httpReason(text)), (reason) =>
              Effect.fail(
                BackendError.rejected({ url, model: target.model, status: response.status, reason, retryAfterMs })
              ))
        )

    // A request object per run: `withScope` finds a request's AbortController by the object, so two runs of one
    // call at once must not share it.
    const call = <A, I>(
      request: () => HttpClientRequest.HttpClientRequest,
      schema: Schema.Schema<A, I>,
      endpoint: string,
      model: string | undefined,
      timeoutMs: number,
      deadline?: Backend.Deadline
    ): Effect.Effect<A, BackendError.BackendError> => {
      const target = { url, model, endpoint }
      const decode = Http.decodeJson(schema, target)
      // The kernel answers in one piece: one limit bounds the whole call, the shortest of the idle timeout, the
      // call's and the turn's deadlines.
      return Effect.flatMap(Http.limits(timeoutMs, config.callTimeoutMs, deadline), (bounds) =>
        Effect.suspend(() => http.execute(request())).pipe(
          Effect.mapError(Http.unreachable(target)),
          Effect.flatMap((response) => readBody(response, target)),
          Effect.flatMap(decode),
          Effect.scoped,
          Http.within(target, bounds)
        ))
    }

    const status: Backend.Service["status"] = Effect.flatMap(
      call(() => HttpClientRequest.get(`${base}/status`), StatusResponse, "/status", undefined, config.requestTimeoutMs),
      (body) =>
        Effect.map(quote(body.message ?? body.status), (message) => ({
          ok: body.status === "ok",
          message,
          inactiveComponents: body.inactive_components ?? []
        }))
    )

    const listEndpoint = "/core/llms/list"
    const listModels: Backend.Service["listModels"] = Effect.flatMap(
      call(() => HttpClientRequest.get(`${base}${listEndpoint}`), LlmsListResponse, listEndpoint, undefined, config.requestTimeoutMs),
      (body) =>
        Effect.gen(function*() {
          // The kernel echoes its config.yaml: note every value beside the name as a secret, then drop it.
          const revealed = body.llms.flatMap((entry) => Redact.collect(ModelList.extras(entry, "name", "backend")))
          yield* Ref.update(secrets, (known) => Redact.add(known, revealed))
          const checked = ModelList.check(body.llms, "name", "backend")
          if (checked.total > 0 && checked.models.length === 0) {
            return yield* new BackendError.MalformedResponse({ url, endpoint: listEndpoint, issue: ModelList.noneUsable(checked) })
          }
          const warning = checked.skipped.length > 0 ? ModelList.warning(listEndpoint, checked) : ""
          // Said once, not on every refresh of the same list.
          if (warning !== (yield* Ref.getAndSet(lastSkipped, warning)) && warning !== "") {
            yield* Effect.logWarning(warning).pipe(Effect.annotateLogs({ url }))
          }
          return checked.models
        })
    )

    /** One warning per model that asks for a temperature: the kernel runs every call at 1.0. */
    const warnTemperature = (request: Backend.Request): Effect.Effect<void> =>
      request.temperature === undefined ? Effect.void : Effect.flatMap(
        Ref.modify(warnedTemperature, (models): [boolean, ReadonlySet<string>] =>
          models.has(request.model) ? [false, models] : [true, new Set(models.size >= 1_024 ? [] : models).add(request.model)]),
        (first) =>
          first
            ? Effect.logWarning(
              `The AIOS kernel ignores temperature (it samples every call at 1.0): temperature ${request.temperature} ` +
                `for model '${request.model.slice(0, 256)}' is not applied.`
            ).pipe(Effect.annotateLogs({ url }))
            : Effect.void
      )

    const query = (request: Backend.Request): Effect.Effect<ReadonlyArray<Backend.Chunk>, BackendError.BackendError> => {
      const blank = Http.blankModel(url, request.model)
      if (blank !== undefined) return Effect.fail(blank)
      const body: QueryRequestBody = {
        agent_name: config.agentName,
        query_type: "llm",
        query_data: {
          messages: request.messages,
          llms: [{ name: request.model }],
          tools: (request.tools ?? []).map(Http.wireTool),
          action_type: "chat",
          message_return_type: "text",
          // Sent although today's kernel discards them, so a kernel that honours them can.
          ...(request.maxTokens !== undefined ? { max_new_tokens: request.maxTokens } : {}),
          ...(request.temperature !== undefined ? { temperature: request.temperature } : {})
        }
      }
      // Encoded once per call. Beyond the model name the body is typed: re-validating a long conversation on
      // every call would be pure overhead.
      const payload = HttpBody.unsafeJson(body)
      return warnTemperature(request).pipe(
        Effect.zipRight(call(
          () => HttpClientRequest.post(`${base}/query`).pipe(HttpClientRequest.setBody(payload)),
          QueryResponseBody,
          "/query",
          request.model,
          request.timeoutMs ?? config.requestTimeoutMs,
          request.deadline
        )),
        Effect.flatMap(({ response }) =>
          response.status_code === 200 && response.error === null
            ? Effect.succeed(chunksOf(response, request.maxTokens))
            : Effect.flatMap(quote(response.error ?? ""), (reason) =>
              Effect.fail(BackendError.rejected({
                url,
                model: request.model,
                // An error with status 200 is still an error; the kernel says no more than 500 would.
                status: response.status_code === 200 ? 500 : response.status_code,
                reason,
                inBody: true
              })))
        )
      )
    }

    return {
      url,
      capabilities,
      status,
      listModels,
      stream: (request) => Stream.fromIterableEffect(query(request))
    } satisfies Backend.Service
  }
)

/**
 * The AIOS backend; provide an `HttpClient` (e.g. `NodeHttpClient.layerUndici`) and an `AiosConfig`.
 *
 * @since 0.2.0
 */
export const layer: Layer.Layer<Backend.Backend, never, HttpClient.HttpClient | AiosConfig.AiosConfig> = Layer.effect(
  Backend.Backend,
  make
)

/**
 * The AIOS backend configured from the environment (`AIOS_URL`, …) over `options`; see `AiosConfig.layerConfig`.
 *
 * @since 0.2.0
 */
export const layerConfig = (
  options?: AiosConfig.AiosConfigInput
): Layer.Layer<Backend.Backend, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.provide(layer, AiosConfig.layerConfig(options))
