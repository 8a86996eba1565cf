/**
 * A typed client for the AIOS kernel's HTTP API (`/status`, `/core/llms/list`, `/query`), with the wire formats
 * as Schemas beside it, and the same service over OpenAI-compatible `/v1` endpoints (`layerOpenAiCompatible`). Every call has the client timeout (the kernel has none) and interruption aborts the
 * HTTP request. Failures, including the kernel's in-body `status_code`s, arrive as `KernelError`s.
 *
 * @since 0.1.0
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AiosConfig } from "./AiosConfig.js"
import { jsonObject } from "./internal/jsonObject.js"
import * as ApiKeys from "./ApiKeys.js"
import * as OpenAiCompatible from "./internal/openAiCompatible.js"
import * as KernelError from "./KernelError.js"
import * as RetryAfter from "./RetryAfter.js"

// ---------------------------------------------------------------------------------------------------------------
// Wire formats
// ---------------------------------------------------------------------------------------------------------------

/** `GET /status`. */
export const StatusResponse = Schema.Struct({
  status: Schema.String,
  message: Schema.optional(Schema.String),
  inactive_components: Schema.optional(Schema.Array(Schema.String))
})

/**
 * One entry of `GET /core/llms/list`. Only `name` and `backend` are declared: decoding drops every other key
 * (`api_key`, `hostname`, …) so no secret outlives the decode.
 */
export const LlmEntry = Schema.Struct({
  name: Schema.String,
  backend: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
})

/** `GET /core/llms/list`. */
export const LlmsListResponse = Schema.Struct({
  status: Schema.String,
  message: Schema.optional(Schema.String),
  llms: Schema.Array(LlmEntry)
})

/** A tool call an assistant message made, in OpenAI's format (`arguments` is a JSON string). */
export const AssistantToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})
export type AssistantToolCall = typeof AssistantToolCall.Type

/**
 * An OpenAI-format chat message, as `/query` forwards it to the provider. `tool_calls` lets an assistant
 * message carry native calls, which OpenAI-compatible servers require before the `tool` messages answering them.
 */
export const ChatMessage = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant", "tool"),
  content: Schema.NullOr(Schema.String),
  tool_call_id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  tool_calls: Schema.optional(Schema.Array(AssistantToolCall))
})
export type ChatMessage = typeof ChatMessage.Type

/** An OpenAI-format tool definition (`{"type":"function","function":{…}}`). */
export const NativeTool = Schema.Struct({
  type: Schema.Literal("function"),
  function: Schema.Struct({
    name: Schema.String,
    description: Schema.optional(Schema.String),
    parameters: Schema.optional(Schema.Unknown)
  })
})
export type NativeTool = typeof NativeTool.Type

/** The `action_type`s the kernel accepts; anything else is HTTP 422. */
export const ActionType = Schema.Literal(
  "chat",
  "chat_with_json_output",
  "chat_with_tool_call_output",
  "call_tool",
  "operate_file"
)

/** `POST /query` body. */
export const QueryRequestBody = Schema.Struct({
  agent_name: Schema.String,
  query_type: Schema.Literal("llm"),
  query_data: Schema.Struct({
    messages: Schema.Array(ChatMessage),
    // An entry without a name hangs the real kernel: the Schema refuses it before it is sent.
    llms: Schema.NonEmptyArray(Schema.Struct({ name: Schema.NonEmptyTrimmedString, backend: Schema.optional(Schema.String) })),
    tools: Schema.Array(NativeTool),
    action_type: ActionType,
    message_return_type: Schema.Literal("text", "json"),
    max_new_tokens: Schema.optional(Schema.Int),
    temperature: Schema.optional(Schema.Number)
  })
})
export type QueryRequestBody = typeof QueryRequestBody.Type

/** A native tool call as the kernel returns it (`/` in names travels as `__`). */
export const WireToolCall = Schema.Struct({
  name: Schema.String,
  parameters: Schema.optionalWith(Schema.Union(Schema.Record({ key: Schema.String, value: Schema.Unknown }), Schema.String), {
    default: () => ({})
  }),
  id: Schema.optional(Schema.NullOr(Schema.String))
})

/** `POST /query` response envelope; HTTP 200 even for failures, which are in `response.status_code`. */
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

/** FastAPI's 422 body. */
const ValidationErrorBody = Schema.Struct({
  detail: Schema.Array(Schema.Struct({ loc: Schema.optional(Schema.Array(Schema.Union(Schema.String, Schema.Number))), msg: Schema.String }))
})
/** FastAPI's 500 body. */
const DetailBody = Schema.Struct({ detail: Schema.String })

// ---------------------------------------------------------------------------------------------------------------
// Domain
// ---------------------------------------------------------------------------------------------------------------

/** A model the kernel serves: its name and backend only. */
export interface KernelModel {
  readonly name: string
  readonly backend: string | null
}

/** The kernel's health. */
export interface KernelStatus {
  readonly ok: boolean
  readonly message: string
  readonly inactiveComponents: ReadonlyArray<string>
}

/** Token usage, when the backend reports it. */
export interface Usage {
  readonly inputTokens: number
  readonly outputTokens: number
}

/** One model call. */
export interface QueryRequest {
  readonly model: string
  readonly messages: ReadonlyArray<ChatMessage>
  /** Native tools; normally empty for AIOS, which loses text replies when tools are sent. */
  readonly tools?: ReadonlyArray<NativeTool> | undefined
  readonly maxTokens?: number | undefined
  readonly temperature?: number | undefined
  /** Overrides `requestTimeoutMs` for this call. */
  readonly timeoutMs?: number | undefined
}

/** A tool call returned natively by the backend. */
export interface NativeToolCall {
  readonly id: string | undefined
  readonly name: string
  readonly arguments: Readonly<Record<string, unknown>>
}

/** A complete reply. */
export interface QueryResult {
  readonly model: string
  readonly text: string
  readonly toolCalls: ReadonlyArray<NativeToolCall>
  /** Undefined when the backend reports none (AIOS never does). */
  readonly usage: Usage | undefined
  /** Undefined when the backend does not say (AIOS never does). */
  readonly finishReason: "stop" | "length" | "tool_calls" | undefined
}

/**
 * A piece of a streamed reply. Backends without streaming (AIOS) produce the whole reply as one `TextDelta`
 * followed by `ToolCallDelta`s and a `Finish`.
 */
export type QueryChunk =
  | { readonly _tag: "TextDelta"; readonly text: string }
  | {
    readonly _tag: "ToolCallDelta"
    readonly index: number
    readonly id?: string | undefined
    readonly name?: string | undefined
    readonly argumentsDelta: string
  }
  | {
    readonly _tag: "Finish"
    readonly reason: "stop" | "length" | "tool_calls" | undefined
    readonly usage: Usage | undefined
  }

/**
 * The kernel client service.
 *
 * @since 0.1.0
 */
export interface Service {
  /** The kernel's base URL (no trailing slash). */
  readonly url: string
  /** Which wire protocol this client speaks. */
  readonly backend: "aios" | "openai-compatible"
  /** Whether `queryStream` delivers the reply as it is generated; `false`: in one piece, as `query` does. */
  readonly streaming: boolean
  /** `GET /status`. */
  readonly status: Effect.Effect<KernelStatus, KernelError.KernelError>
  /** `GET /core/llms/list`, reduced to name and backend. Uncached: see `ModelCatalog`. */
  readonly listModels: Effect.Effect<ReadonlyArray<KernelModel>, KernelError.KernelError>
  /** One complete model call. */
  readonly query: (request: QueryRequest) => Effect.Effect<QueryResult, KernelError.KernelError>
  /** One model call as a stream of chunks (a single burst for AIOS). */
  readonly queryStream: (request: QueryRequest) => Stream.Stream<QueryChunk, KernelError.KernelError>
}

/**
 * @since 0.1.0
 */
export class KernelClient extends Context.Tag("effect-aios/KernelClient")<KernelClient, Service>() {}

// ---------------------------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------------------------

/** Describes a decode failure by path and kind only: the body may hold secrets, so no value is echoed. */
export const describeIssue = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "body"} ${i._tag === "Missing" ? "is missing" : "has the wrong shape"}`)
    .join("; ")

/** Maps a transport failure onto `KernelUnreachable`, naming the socket error code when there is one. */
export const unreachable = (url: string, model: string | undefined) =>
(error: HttpClientError.HttpClientError | Error): KernelError.KernelUnreachable => {
  const code = socketCode(error)
  return new KernelError.KernelUnreachable({
    url,
    model,
    detail: code ?? ("reason" in error ? `${error.reason.toLowerCase()} error` : error.message),
    cause: error
  })
}

const socketCode = (error: unknown): string | undefined => {
  let e: unknown = error
  for (let depth = 0; depth < 6 && e !== null && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === "string" && /^[A-Z_]+$/.test(code)) return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/** Reads the body as text and maps a non-200 status onto `KernelHttpError`. */
const readBody = (
  url: string,
  model: string | undefined,
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<string, KernelError.KernelError> =>
  response.text.pipe(
    Effect.mapError(unreachable(url, model)),
    Effect.flatMap((text) =>
      response.status === 200
        ? Effect.succeed(text)
        : Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.fail(
            new KernelError.KernelHttpError({
              url,
              model,
              status: response.status,
              detail: httpDetail(text),
              retryAfterMs: Option.getOrUndefined(RetryAfter.parse(response.headers, now)),
              errorType: undefined
            })
          ))
    )
  )

/** FastAPI's error detail as readable lines: `body.query_data.action_type: Input should be …`. */
const httpDetail = (text: string): ReadonlyArray<string> => {
  const json = Either.try(() => JSON.parse(text) as unknown)
  if (Either.isRight(json)) {
    const validation = Schema.decodeUnknownOption(ValidationErrorBody)(json.right)
    if (Option.isSome(validation)) {
      return validation.value.detail.map((d) => (d.loc && d.loc.length > 0 ? `${d.loc.join(".")}: ${d.msg}` : d.msg))
    }
    const detail = Schema.decodeUnknownOption(DetailBody)(json.right)
    if (Option.isSome(detail)) return [detail.value.detail]
  }
  const trimmed = text.trim()
  return trimmed.length === 0 ? [] : [trimmed.length > 300 ? `${trimmed.slice(0, 300)}…` : trimmed]
}

/** Parses JSON and decodes it with `schema`, or fails with `KernelMalformedResponse`. */
export const decodeJson = <A, I>(
  schema: Schema.Schema<A, I>,
  context: { readonly url: string; readonly endpoint: string; readonly model?: string | undefined }
) =>
(text: string): Effect.Effect<A, KernelError.KernelMalformedResponse> => {
  const malformed = (issue: string) =>
    new KernelError.KernelMalformedResponse({ url: context.url, model: context.model, endpoint: context.endpoint, issue })
  return Either.try(() => JSON.parse(text) as unknown).pipe(
    Either.mapLeft(() => malformed(text.trim().length === 0 ? "the body is empty" : "the body is not JSON")),
    Either.flatMap((json) =>
      Schema.decodeUnknownEither(schema)(json).pipe(Either.mapLeft((e) => malformed(describeIssue(e))))
    )
  )
}

/** Adds the client timeout to a call; interruption (and so the timeout) aborts the HTTP request. */
export const withTimeout = (url: string, model: string | undefined, timeoutMs: number) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | KernelError.KernelTimeout, R> =>
  Effect.timeoutFail(effect, {
    duration: Duration.millis(timeoutMs),
    onTimeout: () => new KernelError.KernelTimeout({ url, model, timeoutMs })
  })

/** The clock fibers use unless something else is provided (a `TestClock`, `Effect.withClock`). */
const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)
/** Longer waits are "never" for the live clock (and overflow `setTimeout`). */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * The client timeout for a call whose HTTP request is tied to a scope (`HttpClient.withScope`): the call runs in a
 * fresh scope that a failure, an interruption or the deadline closes, which aborts the request. On the live clock
 * the deadline is a plain timer, without the two fibers `Effect.timeoutFail` races (bench/adapter.ts: 25–45 µs a
 * call); any other clock (a `TestClock`) gets `withTimeout`. A success leaves the scope unclosed for the garbage
 * collector: its one finalizer would only abort a request that has completed, which costs ≈50 µs.
 */
const withDeadline = (url: string, model: string | undefined, timeoutMs: number) =>
<A, E, R>(work: Effect.Effect<A, E, R | Scope.Scope>): Effect.Effect<A, E | KernelError.KernelTimeout, Exclude<R, Scope.Scope>> =>
  Effect.clockWith((clock) =>
    Effect.flatMap(Scope.make(), (scope) => {
      const closeOnFailure = <X, Y, Z>(self: Effect.Effect<X, Y, Z>) =>
        Effect.onExit(self, (exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
      const scoped = Scope.extend(work, scope)
      if (clock !== liveClock || !(timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS)) {
        return closeOnFailure(withTimeout(url, model, timeoutMs)(scoped))
      }
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        Effect.runFork(Scope.close(scope, Exit.void))
      }, timeoutMs)
      return scoped.pipe(
        Effect.catchAll((error) => Effect.fail(timedOut ? new KernelError.KernelTimeout({ url, model, timeoutMs }) : error)),
        Effect.ensuring(Effect.sync(() => clearTimeout(timer))),
        closeOnFailure
      )
    })
  )

/** Turns a complete result into the chunks a streaming backend would have produced. */
export const resultToChunks = (result: QueryResult): ReadonlyArray<QueryChunk> => [
  ...(result.text.length > 0 ? [{ _tag: "TextDelta", text: result.text } as const] : []),
  ...result.toolCalls.map((call, index) => ({
    _tag: "ToolCallDelta" as const,
    index,
    id: call.id,
    name: call.name,
    argumentsDelta: JSON.stringify(call.arguments)
  })),
  { _tag: "Finish", reason: result.finishReason, usage: result.usage }
]

const toolArguments = (parameters: Readonly<Record<string, unknown>> | string): Readonly<Record<string, unknown>> => {
  if (typeof parameters !== "string") return parameters
  return Option.getOrElse(jsonObject(parameters), () => ({ input: parameters }))
}

/**
 * Builds an AIOS kernel client over an `HttpClient`.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<Service, never, HttpClient.HttpClient | AiosConfig> = Effect.gen(function*() {
  const config = yield* AiosConfig
  // Each request lives as long as its call's scope: closing it (the deadline, an interruption) aborts it.
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
  ): Effect.Effect<A, KernelError.KernelError> =>
    Effect.suspend(() => http.execute(request())).pipe(
      Effect.mapError(unreachable(url, model)),
      Effect.flatMap((response) => readBody(url, model, response)),
      Effect.flatMap(decodeJson(schema, { url, endpoint, model })),
      withDeadline(url, model, timeoutMs)
    )

  const status: Service["status"] = call(
    () => HttpClientRequest.get(`${url}/status`),
    StatusResponse,
    "/status",
    undefined,
    config.requestTimeoutMs
  ).pipe(
    Effect.map((body) => ({
      ok: body.status === "ok",
      message: body.message ?? body.status,
      inactiveComponents: body.inactive_components ?? []
    }))
  )

  const listModels: Service["listModels"] = call(
    () => HttpClientRequest.get(`${url}/core/llms/list`),
    LlmsListResponse,
    "/core/llms/list",
    undefined,
    config.requestTimeoutMs
  ).pipe(Effect.map((body) => body.llms.map(({ backend, name }) => ({ name, backend }))))

  const query: Service["query"] = (request) => {
    const body: QueryRequestBody = {
      agent_name: config.agentName,
      query_type: "llm",
      query_data: {
        messages: request.messages,
        llms: [{ name: request.model }],
        tools: request.tools ?? [],
        action_type: "chat",
        message_return_type: "text",
        ...(request.maxTokens !== undefined ? { max_new_tokens: request.maxTokens } : {}),
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {})
      }
    }
    // Encoded once per call; `call` builds a fresh request around it for each attempt.
    const payload = HttpBody.unsafeJson(body)
    // The one field worth checking before sending: a blank model name hangs the real kernel. The rest is
    // typed; re-validating a 40k-character conversation on every call would be pure overhead.
    const send: Effect.Effect<typeof QueryResponseBody.Type, KernelError.KernelError> = request.model.trim() === ""
      ? Effect.fail(
        new KernelError.KernelHttpError({
          url,
          model: request.model,
          status: 400,
          detail: ["request not sent: the model name is empty"],
          retryAfterMs: undefined,
          errorType: "invalid_request"
        })
      )
      : call(
        () => HttpClientRequest.post(`${url}/query`).pipe(HttpClientRequest.setBody(payload)),
        QueryResponseBody,
        "/query",
        request.model,
        request.timeoutMs ?? config.requestTimeoutMs
      )
    return send.pipe(
      Effect.flatMap(({ response }) => {
        if (response.status_code !== 200 || response.error !== null) {
          const reason = response.error ?? ""
          const statusCode = response.status_code === 200 ? 500 : response.status_code
          return Effect.fail(
            new KernelError.KernelRejected({
              url,
              model: request.model,
              statusCode,
              kind: KernelError.rejectionKind(statusCode, reason),
              reason,
              retryAfterMs: undefined,
              errorType: undefined
            })
          )
        }
        return Effect.succeed<QueryResult>({
          model: request.model,
          text: response.response_message ?? "",
          toolCalls: (response.tool_calls ?? []).map((c) => ({
            id: c.id ?? undefined,
            name: c.name.replaceAll("__", "/"),
            arguments: toolArguments(c.parameters)
          })),
          usage: undefined,
          finishReason: undefined
        })
      })
    )
  }

  return {
    url,
    backend: "aios",
    streaming: false,
    status,
    listModels,
    query,
    queryStream: (request) => Stream.fromIterableEffect(Effect.map(query(request), resultToChunks))
  } satisfies Service
})

/**
 * The AIOS client layer; provide an `HttpClient` (e.g. `FetchHttpClient.layer`) and an `AiosConfig`.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<KernelClient, never, HttpClient.HttpClient | AiosConfig> = Layer.effect(
  KernelClient,
  make
)

// ---------------------------------------------------------------------------------------------------------------
// OpenAI-compatible endpoints
// ---------------------------------------------------------------------------------------------------------------

/**
 * Builds a client for an OpenAI-compatible `/v1` endpoint (`baseUrl` ends in `/v1`): models from
 * `GET {baseUrl}/models`, chat over `POST {baseUrl}/chat/completions` streamed as server-sent events, keys
 * from `ApiKeys`. `requestTimeoutMs` is an idle timeout there: it bounds the wait for the response head and for
 * each next piece of the stream, not the whole reply.
 *
 * @since 0.1.0
 */
export const makeOpenAiCompatible: Effect.Effect<Service, never, HttpClient.HttpClient | AiosConfig | ApiKeys.ApiKeys> =
  // Suspended: the implementation imports this module's helpers, so it must not be read at load time.
  Effect.suspend(() => OpenAiCompatible.make)

/**
 * The OpenAI-compatible client layer, with key rotation over `AiosConfig.apiKeys`.
 *
 * @since 0.1.0
 */
export const layerOpenAiCompatible: Layer.Layer<KernelClient, never, HttpClient.HttpClient | AiosConfig> = Layer.effect(
  KernelClient,
  makeOpenAiCompatible
).pipe(Layer.provide(ApiKeys.layer))

/**
 * The client `AiosConfig.backend` asks for: AIOS (`layer`) or OpenAI-compatible (`layerOpenAiCompatible`).
 *
 * @since 0.1.0
 */
export const layerFromConfig: Layer.Layer<KernelClient, never, HttpClient.HttpClient | AiosConfig> = Layer.unwrapEffect(
  Effect.map(AiosConfig, (config) => (config.backend === "openai-compatible" ? layerOpenAiCompatible : layer))
)

/**
 * Whether a refusal says the endpoint has no native tools ("tools are not supported", …), so the caller can
 * fall back to the tag protocol.
 *
 * @since 0.1.0
 */
export const nativeToolsUnsupported = (error: KernelError.KernelError): boolean =>
  OpenAiCompatible.nativeToolsUnsupported(error)
