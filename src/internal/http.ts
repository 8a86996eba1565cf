/**
 * What both wires (`AiosBackend`, `OpenAiBackend`) share: a transport failure as `BackendUnreachable`, a body read
 * within `maxResponseBytes`, JSON decoded with a Schema into `MalformedResponse`, the client timeouts (idle, and
 * the whole-call deadline), the server's Retry-After, and the OpenAI function-tool shape both send.
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Backend from "../Backend.js"
import * as BackendError from "../BackendError.js"
import * as RetryAfter from "../RetryAfter.js"

/** Where a call went: for the errors it may end in. `url` is the printable (redacted) base URL. */
export interface Target {
  readonly url: string
  readonly model?: string | undefined
  readonly endpoint?: string | undefined
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

/** A body over the size limit: a typed error naming the limit, never the body. */
export const tooLarge = (target: Target, maxBytes: number): BackendError.MalformedResponse =>
  new BackendError.MalformedResponse({
    url: target.url,
    model: target.model,
    endpoint: target.endpoint ?? "",
    issue: `the body is larger than ${maxBytes} bytes (maxResponseBytes)`
  })

const utf8 = (parts: ReadonlyArray<Uint8Array>, size: number): string => {
  const all = new Uint8Array(size)
  let at = 0
  for (const part of parts) {
    all.set(part.subarray(0, Math.min(part.length, size - at)), at)
    at += part.length
    if (at >= size) break
  }
  return new TextDecoder().decode(all)
}

/** The `content-length` a response declares, when it declares a usable one. */
const declaredLength = (response: HttpClientResponse.HttpClientResponse): number | undefined => {
  const length = Number(response.headers["content-length"] ?? Number.NaN)
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

/**
 * The body as text within `maxBytes`: a larger declared `content-length` is `MalformedResponse` before anything
 * is read; a body of unknown length is read as a stream and counted, and is `MalformedResponse` as soon as it
 * passes `maxBytes` (the read stops; the caller's scope then aborts the request). A connection lost while
 * reading is `BackendUnreachable`.
 */
export const readText = (
  response: HttpClientResponse.HttpClientResponse,
  target: Target,
  maxBytes: number
): Effect.Effect<string, BackendError.BackendUnreachable | BackendError.MalformedResponse> => {
  const declared = declaredLength(response)
  if (declared !== undefined && declared > maxBytes) return Effect.fail(tooLarge(target, maxBytes))
  // A declared length bounds the body (HTTP framing reads no more): read it whole, the cheaper way.
  if (declared !== undefined) return Effect.mapError(response.text, unreachable(target))
  return response.stream.pipe(
    Stream.mapError(unreachable(target)),
    Stream.runFoldEffect(
      { parts: [] as Array<Uint8Array>, size: 0 },
      (read, bytes): Effect.Effect<{ parts: Array<Uint8Array>; size: number }, BackendError.MalformedResponse> => {
        const size = read.size + bytes.length
        if (size > maxBytes) return Effect.fail(tooLarge(target, maxBytes))
        read.parts.push(bytes)
        return Effect.succeed({ parts: read.parts, size })
      }
    ),
    Effect.map(({ parts, size }) => utf8(parts, size))
  )
}

/**
 * At most the first `maxBytes` of the body as text, the rest unread: for error bodies, whose status is what
 * matters and whose words are quoted only in part.
 */
export const readPrefix = (
  response: HttpClientResponse.HttpClientResponse,
  target: Target,
  maxBytes: number
): Effect.Effect<string, BackendError.BackendUnreachable> =>
  response.stream.pipe(
    Stream.mapError(unreachable(target)),
    Stream.runFoldWhile(
      { parts: [] as Array<Uint8Array>, size: 0 },
      (read) => read.size < maxBytes,
      (read, bytes) => {
        read.parts.push(bytes)
        return { parts: read.parts, size: read.size + bytes.length }
      }
    ),
    Effect.map(({ parts, size }) => utf8(parts, Math.min(size, maxBytes)))
  )

/** How much of an error body is read. */
export const errorBodyBytes = 64 * 1024

/** Fails a byte stream with `MalformedResponse` once more than `maxBytes` have come, before the excess is used. */
export const capBytes = (target: Target, maxBytes: number) =>
<E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E | BackendError.MalformedResponse, R> =>
  Stream.suspend(() => {
    let size = 0
    return Stream.mapEffect(bytes, (chunk) => {
      size += chunk.length
      return size > maxBytes ? Effect.fail(tooLarge(target, maxBytes)) : Effect.succeed(chunk)
    })
  })

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

const timedOut = (target: Target, timeoutMs: number, setting: BackendError.TimeoutSetting) => () =>
  new BackendError.BackendTimeout({ url: target.url, model: target.model, timeoutMs, setting })

/**
 * The time limits of one call: `idleMs` for each wait (the head, then each piece of the body), and the whole
 * call's deadline, an instant on the `Clock` fixed when the call starts: `callTimeoutMs` from then, or the turn's
 * deadline when that comes first (`setting` and `deadlineMs` name the one that applies, for the error).
 */
export interface Limits {
  readonly idleMs: number
  readonly deadlineAt: number
  readonly deadlineMs: number
  readonly setting: "callTimeoutMs" | "turnTimeoutMs"
}

/** The limits of a call starting now, within `turn` when the call is one attempt of a turn. */
export const limits = (idleMs: number, callMs: number, turn?: Backend.Deadline | undefined): Effect.Effect<Limits> =>
  Effect.map(Clock.currentTimeMillis, (now): Limits =>
    turn !== undefined && turn.atMs < now + callMs
      ? { idleMs, deadlineAt: turn.atMs, deadlineMs: turn.timeoutMs, setting: "turnTimeoutMs" }
      : { idleMs, deadlineAt: now + callMs, deadlineMs: callMs, setting: "callTimeoutMs" })

/**
 * `effect` bounded by whichever comes first: the idle timeout from now, or the call's deadline. Interruption (and
 * so a timeout) aborts its HTTP request. On the `Clock`, so a `TestClock` drives it.
 */
export const within = (target: Target, bounds: Limits) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | BackendError.BackendTimeout, R> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const left = Math.max(0, bounds.deadlineAt - now)
    return left < bounds.idleMs
      ? Effect.timeoutFail(effect, { duration: Duration.millis(left), onTimeout: timedOut(target, bounds.deadlineMs, bounds.setting) })
      : Effect.timeoutFail(effect, { duration: Duration.millis(bounds.idleMs), onTimeout: timedOut(target, bounds.idleMs, "requestTimeoutMs") })
  })

/**
 * A streamed body under the call's limits: each wait for the next piece is bounded by the idle timeout and by the
 * deadline, so neither a stall nor a trickle keeps it open (one timer per wait, as an idle timeout alone takes).
 * Once `finishedAt` holds an instant (the reply's final chunk came), a wait that runs out, or outlasts
 * `graceMs` after that instant, ends the body instead: the reply is complete.
 */
export const bodyWithin = (target: Target, bounds: Limits, finishedAt: Ref.Ref<number | undefined>, graceMs: number) =>
<A, E, R>(stream: Stream.Stream<A, E, R>): Stream.Stream<A, E | BackendError.BackendTimeout, R> =>
  Stream.unwrapScoped(Effect.map(Stream.toPull(stream), (pull) =>
    Stream.repeatEffectChunkOption(
      Effect.flatMap(Effect.zip(Clock.currentTimeMillis, Ref.get(finishedAt)), ([now, finished]) => {
        const deadline = Math.max(0, bounds.deadlineAt - now)
        const ended = () => Option.none<E | BackendError.BackendTimeout>()
        const [duration, onTimeout] = finished !== undefined
          ? [Math.max(0, Math.min(finished + graceMs - now, bounds.idleMs, deadline)), ended]
          : deadline < bounds.idleMs
          ? [deadline, () => Option.some(timedOut(target, bounds.deadlineMs, bounds.setting)())]
          : [bounds.idleMs, () => Option.some(timedOut(target, bounds.idleMs, "requestTimeoutMs")())]
        return Effect.timeoutFail(pull, { duration: Duration.millis(duration), onTimeout })
      })
    )))

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
