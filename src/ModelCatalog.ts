/**
 * The backend's model list, cached: a TTL cache whose concurrent callers share one fetch, which serves the last
 * good list (with a warning) when a refresh fails, and never caches an empty list. Only `name` and `backend` are
 * ever kept. (OpenClaw's model rows over it are in `openclaw/models.ts`.)
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
import { AiosConfig } from "./AiosConfig.js"
import { Backend, type Model } from "./Backend.js"
import * as BackendError from "./BackendError.js"
import * as Redact from "./internal/redact.js"

/**
 * @since 0.1.0
 */
export interface Service {
  /** The models, from cache when fresh. */
  readonly list: Effect.Effect<ReadonlyArray<Model>, BackendError.BackendError>
  /** The model named `name`, or `ModelUnknown` listing the available ones. */
  readonly require: (name: string) => Effect.Effect<Model, BackendError.BackendError>
  /** The last good list, without I/O. */
  readonly cached: Effect.Effect<Option.Option<ReadonlyArray<Model>>>
  /** Drops the cache; the next `list` fetches. */
  readonly invalidate: Effect.Effect<void>
}

/**
 * @since 0.1.0
 */
export class ModelCatalog extends Context.Tag("effect-aios/ModelCatalog")<ModelCatalog, Service>() {}

interface Good {
  readonly models: ReadonlyArray<Model>
  /** The models by name, for `require` on a long list. */
  readonly byName: ReadonlyMap<string, Model>
  readonly at: number
}

interface State {
  readonly good: Option.Option<Good>
  readonly inflight: Option.Option<Deferred.Deferred<ReadonlyArray<Model>, BackendError.BackendError>>
}

const good = (models: ReadonlyArray<Model>, at: number): Good => ({
  models,
  byName: new Map(models.map((m) => [m.name, m])),
  at
})

/**
 * @since 0.1.0
 */
export const make: Effect.Effect<Service, never, Backend | AiosConfig | Scope.Scope> = Effect.gen(
  function*() {
    const backend = yield* Backend
    const config = yield* AiosConfig
    const scope = yield* Effect.scope
    const state = yield* Ref.make<State>({ good: Option.none(), inflight: Option.none() })

    /** The fetch runs in the catalog's scope, so an interrupted caller does not strand the others waiting on it. */
    const refresh = (deferred: Deferred.Deferred<ReadonlyArray<Model>, BackendError.BackendError>) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(backend.listModels)
        const now = yield* Clock.currentTimeMillis
        const current = yield* Ref.get(state)
        if (Exit.isSuccess(exit)) {
          yield* Ref.set(state, {
            good: exit.value.length > 0 ? Option.some(good(exit.value, now)) : current.good,
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
          yield* Effect.logWarning("Model list refresh failed; serving the last good list").pipe(
            Effect.annotateLogs({ url: Redact.url(backend.url), error: reason })
          )
          return yield* Deferred.succeed(deferred, current.good.value.models)
        }
        return yield* Deferred.done(deferred, exit)
      })

    /** A stale or missing list: join the fetch in flight, or lead a new one. */
    const fetchOrWait = (now: number) =>
      Effect.gen(function*() {
        const fresh = yield* Deferred.make<ReadonlyArray<Model>, BackendError.BackendError>()
        const action = yield* Ref.modify(state, (s): [
          { readonly _tag: "hit"; readonly models: ReadonlyArray<Model> } | {
            readonly _tag: "wait" | "lead"
            readonly deferred: Deferred.Deferred<ReadonlyArray<Model>, BackendError.BackendError>
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

    // Every turn asks: a fresh list is answered without a Deferred.
    const list: Service["list"] = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.flatMap(Ref.get(state), (current) =>
        Option.isSome(current.good) && now - current.good.value.at < config.catalogTtlMs
          ? Effect.succeed(current.good.value.models)
          : fetchOrWait(now)))

    const require: Service["require"] = (name) =>
      Effect.flatMap(list, (models) =>
        Effect.flatMap(Ref.get(state), (current) => {
          // The cached index when `models` is the cached list; a list that was not cached (empty) is searched.
          const byName = Option.isSome(current.good) && current.good.value.models === models
            ? current.good.value.byName
            : undefined
          const found = byName !== undefined ? byName.get(name) : models.find((m) => m.name === name)
          return found !== undefined ? Effect.succeed(found) : Effect.fail(
            new BackendError.ModelUnknown({ url: backend.url, model: name, available: models.map((m) => m.name) })
          )
        }))

    return {
      list,
      require,
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
export const layer: Layer.Layer<ModelCatalog, never, Backend | AiosConfig> = Layer.scoped(ModelCatalog, make)
