/**
 * `Llm` for code that does not use Effect: `createLlm(config)` gives Promises, an `AsyncIterable` for streaming
 * and `AbortSignal` cancellation, over one `ManagedRuntime` holding the whole stack (`Aios.layerNode`).
 *
 * Decisions:
 * - `createLlm` never throws. An invalid `config` makes every call reject with an `LlmError` `INVALID_REQUEST`
 *   whose message names each bad key and whose `cause` is the `AiosConfigError`: one error type to catch.
 * - Aborting rejects with `signal.reason` (a `DOMException` named `AbortError` unless the caller gave another),
 *   as `fetch` does: the caller stopped the call, no model failed. A `signal` that is not an `AbortSignal` is
 *   `INVALID_REQUEST`, and nothing is sent.
 * - The library prints nothing: Effect's logger is silent unless `logger` is given; with one, warnings (retries,
 *   a stale model list) and errors go there, and debug lines too when it has `debug`.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as EffectLogger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Aios from "./Aios.js"
import * as AiosConfig from "./AiosConfig.js"
import * as TextLogger from "./internal/textLogger.js"
import * as Llm from "./Llm.js"

/**
 * Where the client's logs go; the shape of OpenClaw's plugin logger (and of `console`).
 *
 * @since 0.2.0
 */
export type Logger = TextLogger.Sink

/**
 * @since 0.2.0
 */
export interface CreateOptions {
  /** Receives the library's log lines; without it the library prints nothing. */
  readonly logger?: Logger | undefined
}

/**
 * A call from Promise code; `signal` cancels it.
 *
 * @since 0.2.0
 */
export interface CallOptions extends Llm.LlmOptions {
  readonly signal?: AbortSignal | undefined
}

/**
 * The Promise client. A failed call rejects with an `Llm.LlmError`; an aborted one with `signal.reason`.
 *
 * @since 0.2.0
 */
export interface LlmClient {
  readonly generate: (options: CallOptions) => Promise<Llm.LlmResult>
  /** The reply's text as it arrives; `break` ends the call and its request. */
  readonly stream: (options: CallOptions) => AsyncIterable<string>
  /** Ends calls in flight (they reject with `INVALID_REQUEST` "closed") and releases everything. */
  readonly close: () => Promise<void>
}

const invalidRequest = (message: string, cause?: unknown): Llm.LlmError =>
  new Llm.LlmError({ code: "INVALID_REQUEST", message, retryable: false, cause })

const closedError = (): Llm.LlmError => invalidRequest("This LLM client is closed (close() was called)")

/** Effect's log lines, as text, to `logger` (`internal/textLogger.ts`); nothing without one. */
const loggerLayer = (logger: Logger | undefined): Layer.Layer<never> => {
  if (logger === undefined || logger === null) return EffectLogger.replace(EffectLogger.defaultLogger, EffectLogger.none)
  const replaced = EffectLogger.replace(EffectLogger.defaultLogger, TextLogger.make(logger))
  return typeof logger.debug === "function"
    ? Layer.merge(replaced, EffectLogger.minimumLogLevel(LogLevel.Debug))
    : replaced
}

/** Fails with the reason of the first of `signals` to abort (at once if one has). */
const abortedBy = (signals: ReadonlyArray<AbortSignal>): Effect.Effect<never, unknown> =>
  Effect.async<never, unknown>((resume) => {
    const fired = signals.find((s) => s.aborted)
    if (fired !== undefined) return resume(Effect.fail(fired.reason))
    const remove = () => signals.forEach((s) => s.removeEventListener("abort", onAbort))
    function onAbort(this: AbortSignal) {
      remove()
      resume(Effect.fail(this.reason))
    }
    signals.forEach((s) => s.addEventListener("abort", onAbort))
    return Effect.sync(remove)
  })

/** The caller's options and signal; the options themselves are checked by `Llm`. */
const signalOf = (options: unknown): Either.Either<AbortSignal | undefined, Llm.LlmError> => {
  try {
    if (options === null || typeof options !== "object" || !("signal" in options) || options.signal === undefined) {
      return Either.right(undefined)
    }
    return options.signal instanceof AbortSignal
      ? Either.right(options.signal)
      : Either.left(invalidRequest("Invalid LLM call: signal: expected an AbortSignal"))
  } catch (e) {
    // A getter that throws, a hostile Proxy: the caller's mistake, told as one, never a synchronous throw.
    return Either.left(invalidRequest(`Invalid LLM call: options could not be read (${e instanceof Error ? e.message : String(e)})`))
  }
}

/**
 * A Promise client over the whole stack, for plugin authors who do not use Effect. The stack (HTTP client,
 * catalog, limits) is built on the first call and lives until `close`.
 *
 * @since 0.2.0
 */
export const createLlm = (config: AiosConfig.AiosConfigInput = {}, options: CreateOptions = {}): LlmClient => {
  const runtime = ManagedRuntime.make(
    Llm.layer.pipe(Layer.provide(Aios.layerNode(config)), Layer.provide(loggerLayer(options?.logger)))
  )
  // Aborted by `close`, with the error the calls in flight reject with.
  const closing = new AbortController()
  const inFlight = new Set<Promise<unknown>>()
  const track = <A>(promise: Promise<A>): Promise<A> => {
    inFlight.add(promise)
    const forget = () => inFlight.delete(promise)
    promise.then(forget, forget)
    return promise
  }

  /** What a failed run rejects with: its `LlmError` or abort reason, or the configuration error as a request error. */
  const rejection = (cause: Cause.Cause<unknown>): unknown =>
    Option.match(Cause.failureOption(cause), {
      onSome: (e) => (e instanceof AiosConfig.AiosConfigError ? invalidRequest(e.message, e) : e),
      onNone: () => (Cause.isInterruptedOnly(cause) ? closedError() : Cause.squash(cause))
    })

  /** The signals a call listens to, or why it must not start. */
  const begin = (options: unknown): Either.Either<ReadonlyArray<AbortSignal>, unknown> =>
    Either.flatMap(signalOf(options), (signal): Either.Either<ReadonlyArray<AbortSignal>, unknown> => {
      if (closing.signal.aborted) return Either.left(closedError())
      if (signal?.aborted === true) return Either.left(signal.reason)
      return Either.right(signal === undefined ? [closing.signal] : [closing.signal, signal])
    })

  const generate: LlmClient["generate"] = (options) =>
    Either.match(begin(options), {
      onLeft: (reason) => Promise.reject(reason),
      onRight: (signals) =>
        track(
          runtime.runPromiseExit(Effect.raceFirst(Llm.generate(options), abortedBy(signals))).then((exit) => {
            if (Exit.isSuccess(exit)) return exit.value
            throw rejection(exit.cause)
          })
        )
    })

  /**
   * One call per iteration, tracked so `close` waits for its request to end. An abort while a `next()` is pending
   * fails the stream (`interruptWhen`); between two `next()` calls the stream may be waiting for its consumer,
   * out of `interruptWhen`'s reach, so the abort ends it through the iterator's `return`, and the next `next()`
   * rejects with the reason.
   */
  async function* iterate(options: CallOptions): AsyncGenerator<string, void, undefined> {
    const signals = Either.getOrThrowWith(begin(options), (reason) => reason)
    let ended = () => {}
    track(new Promise<void>((resolve) => (ended = resolve)))
    const source = Llm.stream(options).pipe(Stream.interruptWhen(abortedBy(signals)), Stream.ensuring(Effect.sync(ended)))
    const exit = await runtime.runPromiseExit(Stream.toAsyncIterableEffect(source))
    if (Exit.isFailure(exit)) {
      ended()
      throw rejection(exit.cause)
    }
    const iterator = exit.value[Symbol.asyncIterator]()
    let pending = false
    const onAbort = () => {
      if (!pending) void iterator.return?.()
    }
    signals.forEach((s) => s.addEventListener("abort", onAbort))
    try {
      for (;;) {
        const fired = signals.find((s) => s.aborted)
        if (fired !== undefined) throw fired.reason
        pending = true
        const result = await iterator.next().finally(() => (pending = false))
        if (result.done === true) return
        yield result.value
      }
    } finally {
      signals.forEach((s) => s.removeEventListener("abort", onAbort))
      await iterator.return?.()
      // A stream that never started has no `ensuring` to run.
      ended()
    }
  }

  const stream: LlmClient["stream"] = (options) => ({ [Symbol.asyncIterator]: () => iterate(options) })

  let closed: Promise<void> | undefined
  const close: LlmClient["close"] = () => {
    closed ??= (async () => {
      closing.abort(closedError())
      await Promise.allSettled([...inFlight])
      await runtime.dispose()
    })()
    return closed
  }

  return { generate, stream, close }
}
