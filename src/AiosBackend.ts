/**
 * The `Backend` service over an AIOS kernel's HTTP API (`/status`, `/core/llms/list`, `/query`), with the wire
 * formats as Schemas beside it. The kernel answers a call in one piece, so `stream` gives the whole reply as
 * chunks once it is in. Every call has the client timeout (the kernel has none, and can hang) and interruption
 * aborts the HTTP request. The kernel reports most failures inside an HTTP 200 body (`response.status_code`):
 * they fail as `BackendRejected` with `inBody: true`.
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
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as AiosConfig from "./AiosConfig.js"
import * as Backend from "./Backend.js"
import * as BackendError from "./BackendError.js"
import * as Http from "./internal/http.js"
import { jsonObject } from "./internal/jsonObject.js"

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
 * One entry of `GET /core/llms/list`. Only `name` and `backend` are declared: decoding drops every other key
 * (`api_key`, `hostname`, …) so no secret outlives the decode.
 *
 * @since 0.2.0
 */
export const LlmEntry = Schema.Struct({
  name: Schema.String,
  backend: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})

/**
 * `GET /core/llms/list`.
 *
 * @since 0.2.0
 */
export const LlmsListResponse = Schema.Struct({
  status: Schema.String,
  message: Schema.optional(Schema.String),
  llms: Schema.Array(LlmEntry)
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
  return Http.cap(text.trim())
}

/** The body of a 200, or the refusal a non-200 stands for (with the wait its headers ask for). */
const readBody = (
  response: HttpClientResponse.HttpClientResponse,
  target: Http.Target
): Effect.Effect<string, BackendError.BackendError> =>
  Effect.flatMap(Http.readText(response, target), (text) =>
    response.status === 200
      ? Effect.succeed(text)
      : Effect.flatMap(Http.retryAfter(response), (retryAfterMs) =>
        Effect.fail(
          BackendError.rejected({ url: target.url, model: target.model, status: response.status, reason: httpReason(text), retryAfterMs })
        )))

/** A call's arguments: the kernel sends an object, or (some providers) a JSON string, or plain text. */
const toolArguments = (parameters: Readonly<Record<string, unknown>> | string): string =>
  JSON.stringify(typeof parameters !== "string" ? parameters : Option.getOrElse(jsonObject(parameters), () => ({ input: parameters })))

/** A successful reply as the chunks of a stream: its text, its native calls, `Finish` (AIOS says no more). */
const chunksOf = (response: typeof QueryResponseBody.Type["response"]): ReadonlyArray<Backend.Chunk> => {
  const text = response.response_message ?? ""
  return [
    ...(text.length > 0 ? [{ _tag: "TextDelta" as const, text }] : []),
    ...(response.tool_calls ?? []).map((call, index) => ({
      _tag: "ToolCallDelta" as const,
      index,
      id: call.id ?? undefined,
      name: call.name.replaceAll("__", "/"),
      argumentsDelta: toolArguments(call.parameters)
    })),
    { _tag: "Finish", reason: undefined, usage: undefined }
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
    const url = config.baseUrl

    // A request object per run: `withScope` finds a request's AbortController by the object, so two runs of one
    // call at once must not share it.
    const call = <A, I>(
      request: () => HttpClientRequest.HttpClientRequest,
      schema: Schema.Schema<A, I>,
      endpoint: string,
      model: string | undefined,
      timeoutMs: number
    ): Effect.Effect<A, BackendError.BackendError> => {
      const target = { url, model, endpoint }
      const decode = Http.decodeJson(schema, target)
      return Effect.suspend(() => http.execute(request())).pipe(
        Effect.mapError(Http.unreachable(target)),
        Effect.flatMap((response) => readBody(response, target)),
        Effect.flatMap(decode),
        Effect.scoped,
        Http.timeout(target, timeoutMs)
      )
    }

    const status: Backend.Service["status"] = Effect.map(
      call(() => HttpClientRequest.get(`${url}/status`), StatusResponse, "/status", undefined, config.requestTimeoutMs),
      (body) => ({
        ok: body.status === "ok",
        message: body.message ?? body.status,
        inactiveComponents: body.inactive_components ?? []
      })
    )

    const listModels: Backend.Service["listModels"] = Effect.map(
      call(() => HttpClientRequest.get(`${url}/core/llms/list`), LlmsListResponse, "/core/llms/list", undefined, config.requestTimeoutMs),
      (body) => body.llms.map(({ backend, name }) => ({ name, backend }))
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
          ...(request.maxTokens !== undefined ? { max_new_tokens: request.maxTokens } : {}),
          ...(request.temperature !== undefined ? { temperature: request.temperature } : {})
        }
      }
      // Encoded once per call. Beyond the model name the body is typed: re-validating a long conversation on
      // every call would be pure overhead.
      const payload = HttpBody.unsafeJson(body)
      return call(
        () => HttpClientRequest.post(`${url}/query`).pipe(HttpClientRequest.setBody(payload)),
        QueryResponseBody,
        "/query",
        request.model,
        request.timeoutMs ?? config.requestTimeoutMs
      ).pipe(
        Effect.flatMap(({ response }) =>
          response.status_code === 200 && response.error === null
            ? Effect.succeed(chunksOf(response))
            : Effect.fail(BackendError.rejected({
              url,
              model: request.model,
              // An error with status 200 is still an error; the kernel says no more than 500 would.
              status: response.status_code === 200 ? 500 : response.status_code,
              reason: response.error ?? "",
              inBody: true
            }))
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
