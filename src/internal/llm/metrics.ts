/**
 * What `Llm` records of each call: the metrics (re-exported by `Llm`), the span's attributes and a debug line.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import type { Finish } from "../../Turn.js"

export const callsTotal: Metric.Metric.Counter<number> = Metric.counter("effect_aios_llm_calls_total", {
  description: "LLM calls by model, kind and outcome",
  incremental: true
})

export const retriesTotal: Metric.Metric.Counter<number> = Metric.counter("effect_aios_llm_retries_total", {
  description: "Retries within LLM calls, by model",
  incremental: true
})

export const errorsTotal: Metric.Metric.Counter<number> = Metric.counter("effect_aios_llm_errors_total", {
  description: "Failed LLM calls by error code",
  incremental: true
})

export const latencyMs = Metric.histogram(
  "effect_aios_llm_latency_ms",
  MetricBoundaries.exponential({ start: 10, factor: 2, count: 14 }),
  "LLM call latency in milliseconds, by model"
)

/** What one call learns as it runs; created afresh for every run. */
export interface Call {
  readonly label: string
  readonly kind: "generate" | "stream"
  readonly startedAt: bigint
  readonly span: Option.Option<Tracer.Span>
  model: string
  attempts: number
  /** Characters of reply text before stop sequences: the output estimate when the turn ended early. */
  rawChars: number
  /** Characters of the conversation sent: the input estimate when the turn ended early. */
  inputChars: number
  matched: boolean
  finish: Finish | undefined
  latencyMs: number | undefined
}

/** `ok`, the failure's code, `interrupted` or `defect`. */
const outcomeOf = (exit: Exit.Exit<unknown, unknown>, codeOf: (error: unknown) => string | undefined): string =>
  Exit.isSuccess(exit)
    ? "ok"
    : Option.match(Cause.failureOption(exit.cause), {
      onSome: (e) => codeOf(e) ?? "defect",
      onNone: () => (Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect")
    })

/** Records a finished call: span attributes, metrics, a debug log line. */
export const record = (
  call: Call,
  exit: Exit.Exit<unknown, unknown>,
  codeOf: (error: unknown) => string | undefined
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const latency = call.latencyMs ?? Number((yield* Clock.currentTimeNanos) - call.startedAt) / 1e6
    const outcome = outcomeOf(exit, codeOf)
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
    if (outcome !== "ok" && outcome !== "interrupted") {
      yield* Metric.increment(Metric.tagged(errorsTotal, "code", outcome === "defect" ? "DEFECT" : outcome))
    }
    yield* Metric.update(Metric.tagged(latencyMs, "model", call.model), latency)
    yield* Effect.logDebug("LLM call finished").pipe(
      Effect.annotateLogs({ outcome, attempts: call.attempts, latencyMs: Math.round(latency) })
    )
  })
