/**
 * LLM calls for plugin authors, through the kernel: `generate` (one reply) and `stream` (its text as it
 * arrives), with model aliases, client-side limits per model (a concurrency cap and a token-bucket rate limit on
 * call starts), the per-turn retry schedule of `TurnRetry` (inside `Turn`), stop sequences applied on the
 * client, typed errors with five codes, a span and metrics per call. `createLlm` is the same for code that does
 * not use Effect: Promises, an `AsyncIterable`, `AbortSignal`s.
 *
 * Decisions:
 * - A model name is looked up as an alias first (`OPENCLAW_MODEL_<ALIAS>`, then config `aliases`, both
 *   case-insensitive; the variable wins), then taken as a kernel model name; one level, no alias chains.
 * - Limits are per resolved model (`models.<name>.limits` replaces `limits`): a permit is held for the whole call,
 *   and a rate token is taken once per call start; retries inside the turn take no new token.
 * - `timeoutMs` bounds each attempt (the kernel request), as in `Turn`; a timed-out attempt is retried.
 * - Aborting (interruption, or `signal` in `createLlm`) is not an `LlmError`: the Promise rejects with
 *   `signal.reason`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as RateLimiter from "effect/RateLimiter"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type * as Tracer from "effect/Tracer"
import * as Aios from "./Aios.js"
import * as AiosConfig from "./AiosConfig.js"
import { classifyError, type FailoverReason } from "./Failover.js"
import * as Aliases from "./internal/llmAliases.js"
import * as Stop from "./internal/llmStop.js"
import type { KernelError } from "./KernelError.js"
import { ModelCatalog } from "./ModelCatalog.js"
import * as ToolTags from "./ToolTags.js"
import { estimateTokens, type Finish, Turn } from "./Turn.js"

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * The five kinds of failure a plugin author handles.
 *
 * @since 0.1.0
 */
export type LlmErrorCode = "TIMEOUT" | "RATE_LIMITED" | "MODEL_UNAVAILABLE" | "INVALID_REQUEST" | "AUTH_FAILED"

/**
 * A failed call. `retryable` is the underlying error's (a rate limit that outlasted the retry budget is still
 * retryable later); `cause` is the underlying `KernelError`, when there is one.
 *
 * @since 0.1.0
 */
export class LlmError extends Data.TaggedError("LlmError")<{
  readonly code: LlmErrorCode
  readonly message: string
  readonly retryable: boolean
  /** The resolved model, when the call got that far. */
  readonly model?: string | undefined
  /** The failover reason of the underlying kernel error. */
  readonly reason?: FailoverReason | undefined
  readonly cause?: unknown
}> {}

/**
 * Failover reason → code. The reasons without a code of their own: `overloaded` and `server_error` (kernel
 * unreachable, 5xx) are `MODEL_UNAVAILABLE` (retryable, as the kernel error says); `billing` and
 * `session_expired` are `AUTH_FAILED` (the account, not the request, is at fault); `tls_certificate` is
 * `MODEL_UNAVAILABLE`; `format`, `context_overflow`, `empty_response` and anything unrecognised are
 * `INVALID_REQUEST`.
 *
 * @since 0.1.0
 */
export const codeForReason: Readonly<Record<FailoverReason, LlmErrorCode>> = {
  auth: "AUTH_FAILED",
  auth_permanent: "AUTH_FAILED",
  billing: "AUTH_FAILED",
  session_expired: "AUTH_FAILED",
  rate_limit: "RATE_LIMITED",
  timeout: "TIMEOUT",
  model_not_found: "MODEL_UNAVAILABLE",
  overloaded: "MODEL_UNAVAILABLE",
  server_error: "MODEL_UNAVAILABLE",
  tls_certificate: "MODEL_UNAVAILABLE",
  format: "INVALID_REQUEST",
  context_overflow: "INVALID_REQUEST",
  empty_response: "INVALID_REQUEST",
  no_error_details: "INVALID_REQUEST",
  unclassified: "INVALID_REQUEST",
  unknown: "INVALID_REQUEST"
}

/**
 * The `LlmError` for a kernel error: code from `Failover.classifyError`, the kernel error's message and
 * `retryable`, the error itself as `cause`.
 *
 * @since 0.1.0
 */
export const fromKernelError = (error: KernelError): LlmError => {
  const reason = classifyError(error)
  return new LlmError({
    code: codeForReason[reason],
    message: error.message,
    retryable: error.retryable,
    model: error.model,
    reason,
    cause: error
  })
}

// ---------------------------------------------------------------------------------------------------------------
// Options and results
// ---------------------------------------------------------------------------------------------------------------

/**
 * A message of a chat history.
 *
 * @since 0.1.0
 */
export interface Message {
  readonly role: "user" | "assistant" | "system"
  readonly content: string
}

/**
 * One call. Give `prompt`, or `messages` (a history), or both (the prompt is then the last user message).
 *
 * @since 0.1.0
 */
export interface LlmOptions {
  readonly prompt?: string | undefined
  /** Prepended to the system messages of `messages`, if any. */
  readonly system?: string | undefined
  /** An alias or a kernel model name; default `AiosConfig.defaultModel` (which may be an alias too). */
  readonly model?: string | undefined
  readonly maxTokens?: number | undefined
  /** The client timeout of each attempt (default `requestTimeoutMs`); a timed-out attempt is retried. */
  readonly timeoutMs?: number | undefined
  /** 0 to 2. */
  readonly temperature?: number | undefined
  /** The output ends before the first match of any of these (applied on the client). */
  readonly stopSequences?: ReadonlyArray<string> | undefined
  readonly messages?: ReadonlyArray<Message> | undefined
}

/**
 * Token counts; `estimated` (about 4 characters a token) when the kernel reported none, as AIOS never does,
 * or when a stop sequence ended the reply before the kernel's report arrived.
 *
 * @since 0.1.0
 */
export interface LlmUsage {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly totalTokens: number
  readonly estimated: boolean
}

/**
 * A complete reply.
 *
 * @since 0.1.0
 */
export interface LlmResult {
  readonly text: string
  /** The kernel model that answered (the alias resolved). */
  readonly model: string
  readonly usage: LlmUsage
  /** From the call to the reply, waits for limits included. */
  readonly latencyMs: number
  /** Attempts made (1 + retries). */
  readonly attempts: number
  readonly finishReason: "stop" | "length" | "stop_sequence"
}

const PositiveInt = Schema.Int.pipe(Schema.positive())

const OptionsSchema = Schema.Struct({
  prompt: Schema.optional(Schema.String),
  system: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String.pipe(Schema.filter((s) => s.trim() !== "" || "must not be empty"))),
  maxTokens: Schema.optional(PositiveInt),
  timeoutMs: Schema.optional(PositiveInt),
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  stopSequences: Schema.optional(Schema.Array(Schema.NonEmptyString)),
  messages: Schema.optional(Schema.Array(Schema.Struct({
    role: Schema.Literal("user", "assistant", "system"),
    content: Schema.String
  })))
})

const invalid = (issues: ReadonlyArray<string>): LlmError =>
  new LlmError({ code: "INVALID_REQUEST", message: `Invalid LLM call: ${issues.join("; ")}`, retryable: false })

/** Decodes what a caller passed (possibly from plain JavaScript); nothing reaches the kernel when it is wrong. */
const validate = (input: unknown): Either.Either<typeof OptionsSchema.Type, LlmError> =>
  Schema.decodeUnknownEither(OptionsSchema, { errors: "all", onExcessProperty: "ignore" })(input ?? {}).pipe(
    Either.mapLeft((e) =>
      invalid(ParseResult.ArrayFormatter.formatErrorSync(e).map((i) =>
        `${i.path.map(String).join(".") || "options"}: ${i.message.split("\n")[0]}`
      ))
    ),
    Either.flatMap((o) => {
      if (o.prompt === undefined && o.messages === undefined) return Either.left(invalid(["give a prompt or messages"]))
      if (o.prompt !== undefined && o.prompt.trim() === "") return Either.left(invalid(["prompt is empty"]))
      if (o.prompt === undefined && !(o.messages ?? []).some((m) => m.role !== "system" && m.content.trim() !== "")) {
        return Either.left(invalid(["messages hold no user or assistant text"]))
      }
      return Either.right(o)
    })
  )

/** Options → the conversation `Turn` renders: system texts joined, history, then the prompt as the last user turn. */
const toContext = (o: typeof OptionsSchema.Type): ToolTags.Context => {
  const history = o.messages ?? []
  const system = [o.system ?? "", ...history.filter((m) => m.role === "system").map((m) => m.content)]
    .filter((s) => s.trim() !== "")
    .join("\n\n")
  const messages: Array<ToolTags.Message> = history.flatMap((m): Array<ToolTags.Message> =>
    m.role === "user"
      ? [{ role: "user", content: m.content }]
      : m.role === "assistant"
      ? [{ role: "assistant", content: [{ type: "text", text: m.content }] }]
      : []
  )
  if (o.prompt !== undefined) messages.push({ role: "user", content: o.prompt })
  return system === "" ? { messages } : { systemPrompt: system, messages }
}

// ---------------------------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------------------------

/**
 * Calls, tagged `model` (`unresolved` when the call failed before resolving it), `kind` (`generate` |
 * `stream`) and `outcome` (`ok`, an error code, `interrupted`, `defect`).
 *
 * @since 0.1.0
 */
export const callsTotal: Metric.Metric.Counter<number> = Metric.counter("effect_aios_llm_calls_total", {
  description: "LLM calls by model, kind and outcome",
  incremental: true
})

/**
 * Retries within calls (attempts beyond the first), tagged `model`.
 *
 * @since 0.1.0
 */
export const retriesTotal: Metric.Metric.Counter<number> = Metric.counter("effect_aios_llm_retries_total", {
  description: "Retries within LLM calls, by model",
  incremental: true
})

/**
 * Failed calls, tagged `code` (an `LlmErrorCode`, or `DEFECT` for a bug).
 *
 * @since 0.1.0
 */
export const errorsTotal: Metric.Metric.Counter<number> = Metric.counter("effect_aios_llm_errors_total", {
  description: "Failed LLM calls by error code",
  incremental: true
})

/**
 * Call latency in milliseconds, tagged `model`.
 *
 * @since 0.1.0
 */
export const latencyMs = Metric.histogram(
  "effect_aios_llm_latency_ms",
  MetricBoundaries.exponential({ start: 10, factor: 2, count: 14 }),
  "LLM call latency in milliseconds, by model"
)

// ---------------------------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 */
export interface Service {
  /** One call, its reply collected. */
  readonly generate: (options: LlmOptions) => Effect.Effect<LlmResult, LlmError>
  /**
   * One call, its text as it arrives (stop sequences applied). The call holds its model's concurrency permit
   * until the stream ends; ending the stream early ends the call and its request.
   */
  readonly stream: (options: LlmOptions) => Stream.Stream<string, LlmError>
  /** The kernel model `model` (an alias or a name; default `defaultModel`) stands for. */
  readonly resolveModel: (model?: string | undefined) => Effect.Effect<string, LlmError>
}

/**
 * @since 0.1.0
 */
export class Llm extends Context.Tag("effect-aios/Llm")<Llm, Service>() {}

/** A model's limits: its permits, and its token bucket when a rate is configured. */
interface Gate {
  readonly semaphore: Effect.Semaphore
  readonly rate: Option.Option<RateLimiter.RateLimiter>
}

/** What one call learns as it runs; created afresh for every run. */
interface Call {
  readonly label: string
  readonly kind: "generate" | "stream"
  readonly startedAt: bigint
  readonly span: Option.Option<Tracer.Span>
  model: string
  attempts: number
  rawChars: number
  /** The conversation sent; rendered again only to estimate usage when a stop sequence ended the turn early. */
  context: ToolTags.Context | undefined
  matched: boolean
  finish: Finish | undefined
  latencyMs: number | undefined
}

/** Usage for a turn that a stop sequence ended before `Turn` reported its own: the same estimate `Turn` makes. */
const estimatedUsage = (call: Call): LlmUsage => {
  const inputChars = call.context === undefined
    ? 0
    : ToolTags.renderContext(call.context).reduce((n, m) => n + m.content.length, 0)
  const input = estimateTokens(inputChars)
  const output = estimateTokens(call.rawChars)
  return { inputTokens: input, outputTokens: output, totalTokens: input + output, estimated: true }
}

const elapsedMs = (from: bigint) => Effect.map(Clock.currentTimeNanos, (now) => Number(now - from) / 1e6)

const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit)
    ? "ok"
    : Option.match(Cause.failureOption(exit.cause), {
      onSome: (e) => (e instanceof LlmError ? e.code : "defect"),
      onNone: () => (Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect")
    })

/** Records a finished call: span attributes, metrics, a debug log line. */
const record = (call: Call, exit: Exit.Exit<unknown, unknown>) =>
  Effect.gen(function*() {
    const latency = call.latencyMs ?? (yield* elapsedMs(call.startedAt))
    const outcome = outcomeOf(exit)
    Option.map(call.span, (span) => {
      span.attribute("llm.model", call.model)
      span.attribute("llm.attempts", call.attempts)
      span.attribute("llm.latency_ms", latency)
      span.attribute("llm.outcome", outcome)
    })
    yield* Metric.increment(
      Metric.taggedWithLabels(callsTotal, [
        MetricLabel.make("model", call.model),
        MetricLabel.make("kind", call.kind),
        MetricLabel.make("outcome", outcome)
      ])
    )
    if (call.attempts > 1) yield* Metric.incrementBy(Metric.tagged(retriesTotal, "model", call.model), call.attempts - 1)
    if (Exit.isFailure(exit) && outcome !== "ok" && outcome !== "interrupted") {
      yield* Metric.increment(Metric.tagged(errorsTotal, "code", outcome === "defect" ? "DEFECT" : outcome))
    }
    yield* Metric.update(Metric.tagged(latencyMs, "model", call.model), latency)
    yield* Effect.logDebug("LLM call finished").pipe(
      Effect.annotateLogs({ outcome, attempts: call.attempts, latencyMs: Math.round(latency) })
    )
  })

/**
 * The service, over `Turn` (which holds the kernel client and the retry schedule) and the catalog.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<Service, never, Turn | ModelCatalog | AiosConfig.AiosConfig | Scope.Scope> = Effect
  .gen(function*() {
    const turn = yield* Turn
    const catalog = yield* ModelCatalog
    const config = yield* AiosConfig.AiosConfig
    const scope = yield* Effect.scope
    const gates = yield* SynchronizedRef.make(new Map<string, Gate>())
    let calls = 0

    const unavailable = (message: string, retryable = false) =>
      new LlmError({ code: "MODEL_UNAVAILABLE", message, retryable, reason: "model_not_found" })

    const known = (models: ReadonlyArray<string>) =>
      Effect.map(Aliases.listAll(config.aliases), (aliases) =>
        `Aliases: ${aliases.length > 0 ? aliases.join(", ") : "none"} (config "aliases" or OPENCLAW_MODEL_<ALIAS>). ` +
        `Kernel models: ${models.length > 0 ? models.join(", ") : "none"}.`)

    const resolveModel: Service["resolveModel"] = (requested) =>
      Effect.gen(function*() {
        const name = requested !== undefined && requested.trim() !== "" ? requested.trim() : config.defaultModel
        const models = (yield* Effect.mapError(catalog.list, fromKernelError)).map((m) => m.name)
        if (name === undefined) {
          return yield* Effect.fail(unavailable(`No model given and no defaultModel configured. ${yield* known(models)}`))
        }
        // An alias wins over a kernel model of the same name, so config can remap a name.
        const alias = yield* Aliases.lookup(config.aliases, name)
        const target = Option.match(alias, { onNone: () => name, onSome: (a) => a.target })
        if (models.includes(target)) return target
        return yield* Effect.fail(unavailable(
          Option.match(alias, {
            onNone: () => `Unknown model or alias '${name}'. `,
            onSome: (a) =>
              `Alias '${name}' (from ${a.source === "env" ? Aliases.envName(name) : "config aliases"}) names model ` +
              `'${target}', which the kernel does not serve. `
          }) + (yield* known(models))
        ))
      })

    /** The gate of `model`, created on first use; its token bucket lives as long as the service. */
    const gateFor = (model: string) =>
      SynchronizedRef.modifyEffect(gates, (map) => {
        const existing = map.get(model)
        if (existing !== undefined) return Effect.succeed([existing, map] as const)
        const limits = config.models[model]?.limits ?? config.limits
        return Effect.gen(function*() {
          const semaphore = yield* Effect.makeSemaphore(limits.concurrency)
          const rate = limits.rate === undefined ? Option.none<RateLimiter.RateLimiter>() : Option.some(
            yield* RateLimiter.make({
              limit: limits.rate.limit,
              interval: Duration.millis(limits.rate.intervalMs),
              algorithm: "token-bucket"
            }).pipe(Scope.extend(scope))
          )
          const gate: Gate = { semaphore, rate }
          return [gate, new Map(map).set(model, gate)] as const
        }).pipe(Effect.uninterruptible)
      })

    /** A permit for the rest of the scope (waiting stays interruptible), then a token for the start. */
    const enter = (gate: Gate) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(restore(gate.semaphore.take(1)), Effect.addFinalizer(() => gate.semaphore.release(1)))
      ).pipe(
        Effect.zipRight(Option.match(gate.rate, { onNone: () => Effect.void, onSome: (limit) => limit(Effect.void) }))
      )

    /** Starts a call in the current scope: validation, model, limits, then the turn's text with stops applied. */
    const start = (input: LlmOptions, kind: Call["kind"]) =>
      Effect.gen(function*() {
        const call: Call = {
          label: `llm${++calls}`,
          kind,
          startedAt: yield* Clock.currentTimeNanos,
          span: yield* Effect.option(Effect.currentSpan),
          model: "unresolved",
          attempts: 1,
          rawChars: 0,
          context: undefined,
          matched: false,
          finish: undefined,
          latencyMs: undefined
        }
        yield* Effect.addFinalizer((exit) => record(call, exit))
        yield* Effect.annotateLogsScoped({ llmCall: call.label })
        const options = yield* validate(input)
        const model = yield* resolveModel(options.model)
        call.model = model
        Option.map(call.span, (span) => span.attribute("llm.model", model))
        yield* Effect.annotateLogsScoped({ model })
        yield* enter(yield* gateFor(model))
        const queuedMs = yield* elapsedMs(call.startedAt)
        Option.map(call.span, (span) => span.attribute("llm.queued_ms", queuedMs))

        const context = toContext(options)
        call.context = context
        const texts = turn.run({
          model,
          context,
          turn: call.label,
          onRetry: ({ attempt }) => {
            call.attempts = Math.max(call.attempts, attempt + 1)
          },
          maxTokens: options.maxTokens,
          temperature: options.temperature,
          timeoutMs: options.timeoutMs
        }).pipe(
          Stream.mapError(fromKernelError),
          // Text for the stop matcher; `Finish` (always last) is its end of input.
          Stream.filterMap((event) => {
            if (event._tag === "TextDelta") {
              call.rawChars += event.text.length
              return Option.some(Option.some(event.text))
            }
            if (event._tag === "Finish") {
              call.finish = event
              return Option.some(Option.none<string>())
            }
            return Option.none()
          }),
          Stream.mapAccum(Stop.initial, Stop.step(options.stopSequences ?? [])),
          // Ends the turn (and its HTTP request) at the first match.
          Stream.takeUntil((out) => out.matched),
          Stream.filterMap((out) => {
            if (out.matched) call.matched = true
            return out.text === "" ? Option.none() : Option.some(out.text)
          })
        )
        return { call, texts }
      })

    const resultOf = (call: Call, text: string): Effect.Effect<LlmResult> =>
      Effect.map(elapsedMs(call.startedAt), (latency): LlmResult => {
        call.latencyMs = latency
        const usage: LlmUsage = call.finish !== undefined ? call.finish.usage : estimatedUsage(call)
        return {
          text,
          model: call.model,
          usage,
          latencyMs: latency,
          attempts: call.attempts,
          finishReason: call.matched ? "stop_sequence" : call.finish?.reason === "length" ? "length" : "stop"
        }
      })

    const attributes = (options: LlmOptions, kind: Call["kind"]) => ({
      "llm.kind": kind,
      "llm.model.requested": typeof options?.model === "string" ? options.model : "(default)"
    })

    const generate: Service["generate"] = (options) =>
      Effect.scoped(Effect.gen(function*() {
        const { call, texts } = yield* start(options, "generate")
        const text = yield* Stream.runFold(texts, "", (acc, piece) => acc + piece)
        return yield* resultOf(call, text)
      })).pipe(Effect.withSpan("Llm.generate", { attributes: attributes(options, "generate") }))

    const stream: Service["stream"] = (options) =>
      Stream.unwrapScoped(Effect.map(start(options, "stream"), ({ texts }) => texts)).pipe(
        Stream.withSpan("Llm.stream", { attributes: attributes(options, "stream") })
      )

    return { generate, stream, resolveModel } satisfies Service
  })

/**
 * The service layer; give it `Aios.layer(…)` (or `Aios.layerWith`) for `Turn`, the catalog and the config.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Llm, never, Turn | ModelCatalog | AiosConfig.AiosConfig> = Layer.scoped(Llm, make)

/**
 * `Llm.generate` from the context.
 *
 * @since 0.1.0
 */
export const generate = (options: LlmOptions): Effect.Effect<LlmResult, LlmError, Llm> =>
  Effect.flatMap(Llm, (llm) => llm.generate(options))

/**
 * `Llm.stream` from the context.
 *
 * @since 0.1.0
 */
export const stream = (options: LlmOptions): Stream.Stream<string, LlmError, Llm> =>
  Stream.unwrap(Effect.map(Llm, (llm) => llm.stream(options)))

// ---------------------------------------------------------------------------------------------------------------
// Promise facade
// ---------------------------------------------------------------------------------------------------------------

/**
 * A call from Promise code; `signal` cancels it.
 *
 * @since 0.1.0
 */
export interface PromiseOptions extends LlmOptions {
  readonly signal?: AbortSignal | undefined
}

/**
 * The Promise client. A failed call rejects with an `LlmError`; an aborted one rejects with `signal.reason`
 * (a `DOMException` named `AbortError` unless the caller gave another reason), as `fetch` does: the caller
 * stopped it, no model failed.
 *
 * @since 0.1.0
 */
export interface LlmClient {
  readonly generate: (options: PromiseOptions) => Promise<LlmResult>
  /** The reply's text as it arrives; `break` ends the call. */
  readonly stream: (options: PromiseOptions) => AsyncIterable<string>
  /** Ends calls in flight (they reject with `INVALID_REQUEST` "closed") and releases everything. */
  readonly close: () => Promise<void>
}

/** The stream's failure when its signal fired; turned back into the signal's reason at the boundary. */
class Aborted {
  constructor(readonly reason: unknown) {}
}

/**
 * A Promise client over the whole stack, for plugin authors who do not use Effect. The stack (HTTP client,
 * catalog, limits) is built on the first call and lives until `close`.
 *
 * @throws AiosConfigError when `config` is invalid (the message names each bad key)
 * @since 0.1.0
 */
export const createLlm = (config: AiosConfig.AiosConfigInput = {}): LlmClient => {
  const values = Either.getOrThrowWith(AiosConfig.decode(config), (e) => e)
  const runtime = ManagedRuntime.make(
    layer.pipe(Layer.provide(Aios.layerWith(Layer.succeed(AiosConfig.AiosConfig, values))))
  )
  const closed = Deferred.unsafeMake<never, LlmError>(FiberId.none)
  const closedError = () =>
    new LlmError({ code: "INVALID_REQUEST", message: "This LLM client is closed (close() was called)", retryable: false })
  let isClosed = false
  const pending = new Set<Promise<unknown>>()
  const track = <A>(promise: Promise<A>): Promise<A> => {
    pending.add(promise)
    const forget = () => pending.delete(promise)
    promise.then(forget, forget)
    return promise
  }

  const split = (options: PromiseOptions): [LlmOptions, AbortSignal | undefined] => {
    if (options === null || typeof options !== "object") return [options, undefined]
    const { signal, ...rest } = options
    return [rest, signal]
  }

  /** What a failed run rejects with. */
  const rejection = (cause: Cause.Cause<unknown>, signal: AbortSignal | undefined): unknown =>
    Option.match(Cause.failureOption(cause), {
      onSome: (e) => (e instanceof Aborted ? e.reason : e),
      onNone: () =>
        Cause.isInterruptedOnly(cause)
          ? signal?.aborted === true ? signal.reason : closedError()
          : Cause.squash(cause)
    })

  const generate: LlmClient["generate"] = (options) => {
    const [rest, signal] = split(options)
    if (isClosed) return Promise.reject(closedError())
    if (signal?.aborted === true) return Promise.reject(signal.reason)
    const effect = Effect.raceFirst(Effect.flatMap(Llm, (llm) => llm.generate(rest)), Deferred.await(closed))
    return track(
      runtime.runPromiseExit(effect, signal === undefined ? undefined : { signal }).then((exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        throw rejection(exit.cause, signal)
      })
    )
  }

  const stream: LlmClient["stream"] = (options) => ({
    [Symbol.asyncIterator]: (): AsyncIterator<string> => {
      const [rest, signal] = split(options)
      // Either ends the stream wherever its producer is (pulling, or waiting for the consumer): the request
      // closes at once, and the next `next()` rejects.
      const aborted = Deferred.unsafeMake<never, Aborted>(FiberId.none)
      const onAbort = () => Deferred.unsafeDone(aborted, Exit.fail(new Aborted(signal?.reason)))
      signal?.addEventListener("abort", onAbort, { once: true })
      const source = Stream.unwrap(Effect.map(Llm, (llm) => llm.stream(rest))).pipe(
        Stream.interruptWhen(Deferred.await(closed)),
        Stream.interruptWhen(Deferred.await(aborted))
      )
      let inner: Promise<AsyncIterator<string>> | undefined
      let done = false
      const end: IteratorResult<string> = { done: true, value: undefined }
      /** No more results; `return` on the inner iterator interrupts whatever fiber it still has. */
      const stop = (): Promise<IteratorResult<string>> => {
        done = true
        signal?.removeEventListener("abort", onAbort)
        return inner === undefined ? Promise.resolve(end) : track(inner.then((it) => it.return?.() ?? end).then(() => end))
      }
      return {
        next: () => {
          if (done) return Promise.resolve(end)
          if (isClosed || signal?.aborted === true) {
            const reason = isClosed ? closedError() : signal?.reason
            return stop().then(() => Promise.reject(reason))
          }
          inner ??= runtime.runtime().then((rt) => Stream.toAsyncIterableRuntime(source, rt)[Symbol.asyncIterator]())
          return track(inner.then((it) => it.next()).then(
            (result) => {
              if (result.done === true) void stop()
              return result
            },
            (error: unknown) => {
              void stop()
              throw error instanceof Aborted ? error.reason : error
            }
          ))
        },
        return: stop
      }
    }
  })

  const close: LlmClient["close"] = async () => {
    if (isClosed) return
    isClosed = true
    Deferred.unsafeDone(closed, Exit.fail(closedError()))
    await Promise.allSettled([...pending])
    await runtime.dispose()
  }

  return { generate, stream, close }
}
