/**
 * What both wires (`AiosBackend`, `OpenAiBackend`) share: a transport failure as `BackendUnreachable`, a body read,
 * JSON decoded with a Schema into `MalformedResponse`, the client timeout, the server's Retry-After, and the OpenAI
 * function-tool shape both send.
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Backend from "../Backend.js"
import * as BackendError from "../BackendError.js"
import * as RetryAfter from "../RetryAfter.js"

/** Where a call went: for the errors it may end in. */
export interface Target {
  readonly url: string
  readonly model?: string | undefined
}

/** Describes a decode failure by path and kind only: the body may hold secrets, so no value is echoed. */
export const describeIssue = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "body"} ${i._tag === "Missing" ? "is missing" : "has the wrong shape"}`)
    .join("; ")

/** The socket error code (`ECONNREFUSED`, `UND_ERR_SOCKET`, …) somewhere down a cause chain. */
const socketCode = (error: unknown): string | undefined => {
  let e: unknown = error
  for (let depth = 0; depth < 6 && e !== null && typeof e === "object"; depth++) {
    const code = (e as { readonly code?: unknown }).code
    if (typeof code === "string" && /^[A-Z_]+$/.test(code)) return code
    e = (e as { readonly cause?: unknown }).cause
  }
  return undefined
}

/**
 * A transport failure as `BackendUnreachable`, naming the socket error code when there is one. The cause keeps
 * the underlying error but not the request, whose headers may hold an API key.
 */
export const unreachable = (target: Target) => (error: HttpClientError.HttpClientError): BackendError.BackendUnreachable =>
  new BackendError.BackendUnreachable({
    url: target.url,
    model: target.model,
    detail: socketCode(error) ?? `${error.reason.toLowerCase()} error`,
    cause: error.cause
  })

/** The body as text; a connection lost while reading it is `BackendUnreachable`. */
export const readText = (
  response: HttpClientResponse.HttpClientResponse,
  target: Target
): Effect.Effect<string, BackendError.BackendUnreachable> => Effect.mapError(response.text, unreachable(target))

/** The wait the response's headers ask for (Retry-After, retry-after-ms), in ms, on the `Clock`'s time. */
export const retryAfter = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<number | undefined> =>
  Effect.map(Clock.currentTimeMillis, (now) => Option.getOrUndefined(RetryAfter.parse(response.headers, now)))

/** Parses JSON and decodes it with `schema`, or fails with `MalformedResponse`. */
export const decodeJson = <A, I>(schema: Schema.Schema<A, I>, target: Target & { readonly endpoint: string }) => {
  const decode = Schema.decodeUnknownEither(schema)
  const malformed = (issue: string) =>
    new BackendError.MalformedResponse({ url: target.url, model: target.model, endpoint: target.endpoint, issue })
  return (text: string): Either.Either<A, BackendError.MalformedResponse> =>
    Either.try(() => JSON.parse(text) as unknown).pipe(
      Either.mapLeft(() => malformed(text.trim().length === 0 ? "the body is empty" : "the body is not JSON")),
      Either.flatMap((json) => Either.mapLeft(decode(json), (e) => malformed(describeIssue(e))))
    )
}

/**
 * The client timeout: `effect` is interrupted (which aborts its HTTP request) and the call fails with
 * `BackendTimeout`. On the `Clock`, so a `TestClock` drives it.
 */
export const timeout = (target: Target, timeoutMs: number) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | BackendError.BackendTimeout, R> =>
  Effect.timeoutFail(effect, {
    duration: Duration.millis(timeoutMs),
    onTimeout: () => new BackendError.BackendTimeout({ url: target.url, model: target.model, timeoutMs })
  })

/** The idle timeout of a streamed body: each wait for the next piece is bounded, not the whole reply. */
export const idleTimeout = (target: Target, timeoutMs: number) =>
<A, E, R>(stream: Stream.Stream<A, E, R>): Stream.Stream<A, E | BackendError.BackendTimeout, R> =>
  Stream.timeoutFail(
    stream,
    () => new BackendError.BackendTimeout({ url: target.url, model: target.model, timeoutMs }),
    Duration.millis(timeoutMs)
  )

/**
 * A blank model name, refused before anything is sent: it hangs the real AIOS kernel, and no endpoint serves it.
 */
export const blankModel = (url: string, model: string): BackendError.BackendRejected | undefined =>
  model.trim() === ""
    ? BackendError.rejected({
      url,
      model,
      status: 400,
      reason: "request not sent: the model name is empty",
      errorType: "invalid_request"
    })
    : undefined

/** Caps a server's text quoted in an error. */
export const cap = (text: string): string => (text.length > 300 ? `${text.slice(0, 300)}…` : text)

/** An OpenAI-format tool definition (`{"type":"function","function":{…}}`), as both wires send native tools. */
export const WireTool = Schema.Struct({
  type: Schema.Literal("function"),
  function: Schema.Struct({
    name: Schema.String,
    description: Schema.optional(Schema.String),
    parameters: Schema.optional(Schema.Unknown)
  })
})
export type WireTool = typeof WireTool.Type

/** A native tool in the wire shape; absent fields stay absent. */
export const wireTool = (tool: Backend.Tool): WireTool => ({
  type: "function",
  function: {
    name: tool.name,
    ...(tool.description !== undefined ? { description: tool.description } : {}),
    ...(tool.parameters !== undefined ? { parameters: tool.parameters } : {})
  }
})
