/**
 * The kernel's model list, cached: a TTL cache whose concurrent callers share one fetch, which serves the last
 * good list (with a warning) when a refresh fails, and never caches an empty list. Produces OpenClaw model
 * rows with the per-model overrides from config. Only `name` and `backend` are ever kept.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import { AiosConfig, type AiosConfigValues } from "./AiosConfig.js"
import { KernelClient, type KernelModel } from "./KernelClient.js"
import * as KernelError from "./KernelError.js"

/**
 * An OpenClaw model definition row (`ModelDefinitionConfig`).
 *
 * @since 0.1.0
 */
export interface ModelRow {
  readonly id: string
  readonly name: string
  readonly reasoning: boolean
  // Mutable arrays: the row goes to OpenClaw, whose ModelDefinitionConfig declares them so.
  readonly input: Array<"text" | "image">
  readonly cost: { readonly input: number; readonly output: number; readonly cacheRead: number; readonly cacheWrite: number }
  readonly contextWindow: number
  readonly maxTokens: number
}

/** The AIOS kernel caps every reply at 1000 tokens, whatever the request says. */
export const DEFAULT_MAX_TOKENS = 1000
/** The kernel does not report context windows; a conservative default, overridable per model. */
export const DEFAULT_CONTEXT_WINDOW = 128_000

/**
 * @since 0.1.0
 */
export interface Service {
  /** The models, from cache when fresh. */
  readonly list: Effect.Effect<ReadonlyArray<KernelModel>, KernelError.KernelError>
  /** The model named `name`, or `ModelUnknown` listing the available ones. */
  readonly require: (name: string) => Effect.Effect<KernelModel, KernelError.KernelError>
  /** OpenClaw rows for every model. */
  readonly rows: Effect.Effect<ReadonlyArray<ModelRow>, KernelError.KernelError>
  /** The OpenClaw row for `name`, from config alone (no I/O). */
  readonly row: (name: string) => ModelRow
  /** The last good list, without I/O. */
  readonly cached: Effect.Effect<Option.Option<ReadonlyArray<KernelModel>>>
  /** Drops the cache; the next `list` fetches. */
  readonly invalidate: Effect.Effect<void>
}

/**
 * @since 0.1.0
 */
export class ModelCatalog extends Context.Tag("effect-aios/ModelCatalog")<ModelCatalog, Service>() {}

/**
 * The OpenClaw row for `name`: defaults plus the per-model overrides in `config.models`. Pure.
 *
 * @since 0.1.0
 */
export const rowFor = (config: Pick<AiosConfigValues, "models">, name: string): ModelRow => {
  const o = config.models[name] ?? {}
  return {
    id: name,
    name,
    reasoning: o.reasoning ?? false,
    input: o.input !== undefined ? [...o.input] : ["text"],
    cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
    contextWindow: o.contextWindow ?? DEFAULT_CONTEXT_WINDOW,
    maxTokens: o.maxTokens ?? DEFAULT_MAX_TOKENS
  }
}

interface State {
  readonly good: Option.Option<{ readonly models: ReadonlyArray<KernelModel>; readonly at: number }>
  readonly inflight: Option.Option<Deferred.Deferred<ReadonlyArray<KernelModel>, KernelError.KernelError>>
}

/**
 * @since 0.1.0
 */
export const make: Effect.Effect<Service, never, KernelClient | AiosConfig | Scope.Scope> = Effect.gen(
  function*() {
    const kernel = yield* KernelClient
    const config = yield* AiosConfig
    const scope = yield* Effect.scope
    const state = yield* Ref.make<State>({ good: Option.none(), inflight: Option.none() })

    /** The fetch runs in the catalog's scope, so an interrupted caller does not strand the others waiting on it. */
    const refresh = (deferred: Deferred.Deferred<ReadonlyArray<KernelModel>, KernelError.KernelError>) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(kernel.listModels)
        const now = yield* Clock.currentTimeMillis
        const current = yield* Ref.get(state)
        if (Exit.isSuccess(exit)) {
          yield* Ref.set(state, {
            good: exit.value.length > 0 ? Option.some({ models: exit.value, at: now }) : current.good,
            inflight: Option.none()
          })
          return yield* Deferred.succeed(deferred, exit.value)
        }
        yield* Ref.set(state, { ...current, inflight: Option.none() })
        if (Option.isSome(current.good)) {
          const reason = Option.match(Cause.failureOption(exit.cause), {
            onNone: () => "interrupted",
            onSome: (e) => e.message
          })
          yield* Effect.logWarning("AIOS model list refresh failed; serving the last good list").pipe(
            Effect.annotateLogs({ kernel: kernel.url, error: reason })
          )
          return yield* Deferred.succeed(deferred, current.good.value.models)
        }
        return yield* Deferred.done(deferred, exit)
      })

    /** A stale or missing list: join the fetch in flight, or lead a new one. */
    const fetchOrWait = (now: number) =>
      Effect.gen(function*() {
        const fresh = yield* Deferred.make<ReadonlyArray<KernelModel>, KernelError.KernelError>()
        const action = yield* Ref.modify(state, (s): [
          { readonly _tag: "hit"; readonly models: ReadonlyArray<KernelModel> } | {
            readonly _tag: "wait" | "lead"
            readonly deferred: Deferred.Deferred<ReadonlyArray<KernelModel>, KernelError.KernelError>
          },
          State
        ] => {
          if (Option.isSome(s.good) && now - s.good.value.at < config.catalogTtlMs) {
            return [{ _tag: "hit", models: s.good.value.models }, s]
          }
          if (Option.isSome(s.inflight)) return [{ _tag: "wait", deferred: s.inflight.value }, s]
          return [{ _tag: "lead", deferred: fresh }, { ...s, inflight: Option.some(fresh) }]
        })
        if (action._tag === "hit") return action.models
        if (action._tag === "lead") yield* Effect.forkIn(refresh(action.deferred), scope)
        return yield* Deferred.await(action.deferred)
      })

    // The hot path (every turn): a fresh list, no allocation, no generator.
    const list: Service["list"] = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.flatMap(Ref.get(state), (current) =>
        Option.isSome(current.good) && now - current.good.value.at < config.catalogTtlMs
          ? Effect.succeed(current.good.value.models)
          : fetchOrWait(now)))

    const row = (name: string): ModelRow => rowFor(config, name)

    const require: Service["require"] = (name) =>
      Effect.flatMap(list, (models) => {
        const found = models.find((m) => m.name === name)
        return found !== undefined ? Effect.succeed(found) : Effect.fail(
          new KernelError.ModelUnknown({ url: kernel.url, model: name, available: models.map((m) => m.name) })
        )
      })

    return {
      list,
      require,
      rows: Effect.map(list, (models) => models.map((m) => row(m.name))),
      row,
      cached: Effect.map(Ref.get(state), (s) => Option.map(s.good, (g) => g.models)),
      invalidate: Ref.update(state, (s) => ({ ...s, good: Option.none() }))
    } satisfies Service
  }
)

/**
 * The catalog layer.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<ModelCatalog, never, KernelClient | AiosConfig> = Layer.scoped(ModelCatalog, make)
