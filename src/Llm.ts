/**
 * LLM calls for plugin authors: `generate` (one reply) and `stream` (its text as it arrives) over `Turn`, with
 * model aliases, client-side limits per model (a concurrency cap and a token-bucket rate limit on call starts),
 * the per-turn retries of `TurnRetry` (inside `Turn`), stop sequences applied on the client, typed errors with
 * five codes, a span and metrics per call. `LlmPromise.createLlm` is the same for code that does not use Effect.
 *
 * Decisions:
 * - A model name is looked up as an alias first (`OPENCLAW_MODEL_<ALIAS>`, then config `aliases`, both
 *   case-insensitive; the variable wins), then taken as a backend model name; one level, no alias chains.
 * - Limits are per resolved model (`models.<name>.limits` replaces `limits`): a permit is held for the whole call,
 *   and a rate token is taken once per call start; retries inside the turn take no new token. They live in
 *   `SharedState`: per process, or shared by every process using the same Redis (`redis` config).
 * - `timeoutMs` bounds each attempt (the backend request), as in `Turn`; a timed-out attempt is retried.
 * - Interruption is not an `LlmError`: the caller stopped the call, no model failed.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AiosConfig from "./AiosConfig.js"
import * as Backend from "./Backend.js"
import * as BackendError from "./BackendError.js"
import * as Aliases from "./internal/llm/aliases.js"
import * as Metrics from "./internal/llm/metrics.js"
import * as Options from "./internal/llm/options.js"
import * as Stop from "./internal/llm/stop.js"
import { ModelCatalog } from "./ModelCatalog.js"
import * as SharedState from "./SharedState.js"
import { Turn } from "./Turn.js"
import * as TurnRetry from "./TurnRetry.js"

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
 * A failed call. `retryable` is the backend error's (`BackendError.isRetryable`: a rate limit that outlasted the
 * retry budget is still retryable later); `kind` and `cause` are the backend error's, when there is one.
 *
 * @since 0.1.0
 */
export class LlmError extends Data.TaggedError("LlmError")<{
  readonly code: LlmErrorCode
  readonly message: string
  readonly retryable: boolean
  /** The resolved model, when the call got that far. */
  readonly model?: string | undefined
  /** The kind of the underlying failure. */
  readonly kind?: BackendError.ErrorKind | undefined
  readonly cause?: unknown
}> {}

/**
 * Error kind → code: the one view of `BackendError.ErrorKind` plugin authors see. The account's failures (quota,
 * auth) are `AUTH_FAILED`; a server that cannot answer now (unreachable, TLS, overloaded, failing, or without the
 * model) is `MODEL_UNAVAILABLE`; whatever the request or the reply got wrong is `INVALID_REQUEST`.
 *
 * @since 0.2.0
 */
export const codeOf: { readonly [K in BackendError.ErrorKind]: LlmErrorCode } = {
  rate_limit: "RATE_LIMITED",
  quota: "AUTH_FAILED",
  auth: "AUTH_FAILED",
  auth_permanent: "AUTH_FAILED",
  timeout: "TIMEOUT",
  unreachable: "MODEL_UNAVAILABLE",
  tls: "MODEL_UNAVAILABLE",
  overloaded: "MODEL_UNAVAILABLE",
  server: "MODEL_UNAVAILABLE",
  model_not_found: "MODEL_UNAVAILABLE",
  bad_request: "INVALID_REQUEST",
  tools_unsupported: "INVALID_REQUEST",
  context_overflow: "INVALID_REQUEST",
  malformed: "INVALID_REQUEST",
  empty_reply: "INVALID_REQUEST"
}

/**
 * The `LlmError` for a backend error: its code from `codeOf`, the backend error's message (and how the turn's
 * retries ended, when they were used up), kind and retryability, the error itself as `cause`.
 *
 * @since 0.2.0
 */
export const fromBackendError = (error: BackendError.BackendError, gaveUp?: string | undefined): LlmError =>
  new LlmError({
    code: codeOf[error.kind],
    message: gaveUp === undefined ? error.message : `${error.message} ${gaveUp}`,
    retryable: BackendError.isRetryable(error),
    model: error.model,
    kind: error.kind,
    cause: error
  })

const invalid = (issues: ReadonlyArray<string>): LlmError =>
  new LlmError({ code: "INVALID_REQUEST", message: `Invalid LLM call: ${issues.join("; ")}`, retryable: false })

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
  /** An alias or a backend model name; default `AiosConfig.defaultModel` (which may be an alias too). */
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
 * A complete reply.
 *
 * @since 0.1.0
 */
export interface LlmResult {
  readonly text: string
  /** The backend model that answered (the alias resolved). */
  readonly model: string
  /**
   * Estimated (about 4 characters a token) when the backend reported none, as AIOS never does, or when a stop
   * sequence ended the reply before the backend's report arrived.
   */
  readonly usage: Backend.Usage
  /** From the call to the reply, waits for limits included. */
  readonly latencyMs: number
  /** Attempts made (1 + retries). */
  readonly attempts: number
  readonly finishReason: Backend.FinishReason | "stop_sequence"
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
export const callsTotal: Metric.Metric.Counter<number> = Metrics.callsTotal

/**
 * Retries within calls (attempts beyond the first), tagged `model`.
 *
 * @since 0.1.0
 */
export const retriesTotal: Metric.Metric.Counter<number> = Metrics.retriesTotal

/**
 * Failed calls, tagged `code` (an `LlmErrorCode`, or `DEFECT` for a bug).
 *
 * @since 0.1.0
 */
export const errorsTotal: Metric.Metric.Counter<number> = Metrics.errorsTotal

/**
 * Call latency in milliseconds, tagged `model`.
 *
 * @since 0.1.0
 */
export const latencyMs: typeof Metrics.latencyMs = Metrics.latencyMs

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
  /** The backend model `model` (an alias or a name; default `defaultModel`) stands for. */
  readonly resolveModel: (model?: string | undefined) => Effect.Effect<string, LlmError>
}

/**
 * @since 0.1.0
 */
export class Llm extends Context.Tag("effect-aios/Llm")<Llm, Service>() {}

const elapsedMs = (from: bigint) => Effect.map(Clock.currentTimeNanos, (now) => Number(now - from) / 1e6)

/**
 * The service, over `Turn` (which holds the backend and the retry schedule) and the catalog.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<
  Service,
  never,
  Turn | ModelCatalog | AiosConfig.AiosConfig | SharedState.SharedState | Scope.Scope
> = Effect
  .gen(function*() {
    const turn = yield* Turn
    const catalog = yield* ModelCatalog
    const config = yield* AiosConfig.AiosConfig
    const shared = yield* SharedState.SharedState
    let calls = 0

    const unavailable = (message: string) =>
      new LlmError({ code: "MODEL_UNAVAILABLE", message, retryable: false, kind: "model_not_found" })

    const known = (models: ReadonlyArray<string>) =>
      Effect.map(Aliases.listAll(config.aliases), (aliases) =>
        `Aliases: ${aliases.length > 0 ? aliases.join(", ") : "none"} (config "aliases" or OPENCLAW_MODEL_<ALIAS>). ` +
        `Backend models: ${models.length > 0 ? models.join(", ") : "none"}.`)

    const resolveModel: Service["resolveModel"] = (requested) =>
      Effect.gen(function*() {
        const name = requested !== undefined && requested.trim() !== "" ? requested.trim() : config.defaultModel
        const models = (yield* Effect.mapError(catalog.list, fromBackendError)).map((m) => m.name)
        if (name === undefined) {
          return yield* Effect.fail(unavailable(`No model given and no defaultModel configured. ${yield* known(models)}`))
        }
        // An alias wins over a backend model of the same name, so config can remap a name.
        const alias = yield* Aliases.lookup(config.aliases, name)
        const target = Option.match(alias, { onNone: () => name, onSome: (a) => a.target })
        if (models.includes(target)) return target
        return yield* Effect.fail(unavailable(
          Option.match(alias, {
            onNone: () => `Unknown model or alias '${name}'. `,
            onSome: (a) =>
              `Alias '${name}' (from ${a.source === "env" ? Aliases.envName(name) : "config aliases"}) names model ` +
              `'${target}', which the backend does not serve. `
          }) + (yield* known(models))
        ))
      })

    /**
     * The limits of `model` for the rest of the scope: a permit (waiting stays interruptible), then a token for
     * the start. Both live in `SharedState`: this process's, or every process's sharing a Redis.
     */
    const enter = (model: string) => {
      const limits = config.models[model]?.limits ?? config.limits
      const key = `llm:${model}`
      return Effect.zipRight(
        shared.acquirePermit(key, limits.concurrency),
        limits.rate === undefined ? Effect.void : shared.rateLimit(key, limits.rate.limit, limits.rate.intervalMs)
      )
    }

    /** Starts a call in the current scope: validation, model, limits, then the turn's text with stops applied. */
    const start = (input: LlmOptions, kind: Metrics.Call["kind"]) =>
      Effect.gen(function*() {
        const call: Metrics.Call = {
          label: `llm${++calls}`,
          kind,
          startedAt: yield* Clock.currentTimeNanos,
          span: yield* Effect.option(Effect.currentSpan),
          model: "unresolved",
          attempts: 1,
          rawChars: 0,
          inputChars: 0,
          matched: false,
          finish: undefined,
          latencyMs: undefined
        }
        yield* Effect.addFinalizer((exit) => Metrics.record(call, exit, (e) => (e instanceof LlmError ? e.code : undefined)))
        yield* Effect.annotateLogsScoped({ llmCall: call.label })
        const options = yield* Effect.mapError(Options.validate(input), invalid)
        const model = yield* resolveModel(options.model)
        call.model = model
        Option.map(call.span, (span) => span.attribute("llm.model", model))
        yield* Effect.annotateLogsScoped({ model })
        yield* enter(model)
        const queuedMs = yield* elapsedMs(call.startedAt)
        Option.map(call.span, (span) => span.attribute("llm.queued_ms", queuedMs))

        const context = Options.toContext(options)
        call.inputChars = Options.inputChars(context)
        // How the turn's retries ended, said in the final error ("Gave up after 4 attempts in 60.4 s: …").
        let gaveUp: string | undefined
        const texts = turn.run({
          model,
          context,
          turn: call.label,
          onRetry: ({ attempt }) => {
            call.attempts = Math.max(call.attempts, attempt + 1)
          },
          onGiveUp: (outcome) => {
            gaveUp = TurnRetry.summary(outcome)
          },
          maxTokens: options.maxTokens,
          temperature: options.temperature,
          timeoutMs: options.timeoutMs
        }).pipe(
          Stream.mapError((error) => fromBackendError(error, gaveUp)),
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
          // Ends the turn (and its request) at the first match.
          Stream.takeUntil((out) => out.matched),
          Stream.filterMap((out) => {
            if (out.matched) call.matched = true
            return out.text === "" ? Option.none() : Option.some(out.text)
          })
        )
        return { call, texts }
      })

    const resultOf = (call: Metrics.Call, text: string): Effect.Effect<LlmResult> =>
      Effect.map(elapsedMs(call.startedAt), (latency): LlmResult => {
        call.latencyMs = latency
        return {
          text,
          model: call.model,
          usage: call.finish?.usage ?? Backend.estimatedUsage(call.inputChars, call.rawChars),
          latencyMs: latency,
          attempts: call.attempts,
          finishReason: call.matched ? "stop_sequence" : call.finish?.reason ?? "stop"
        }
      })

    const attributes = (options: LlmOptions, kind: Metrics.Call["kind"]) => ({
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
 * The service layer; give it `Aios.layer(…)` (or `Aios.layerNode`) for `Turn`, the catalog and the config.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Llm, never, Turn | ModelCatalog | AiosConfig.AiosConfig | SharedState.SharedState> =
  Layer.scoped(Llm, make)

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
