/**
 * Several kernels (or OpenAI-compatible `/v1` endpoints) behind one `Backend`: `AiosConfig.kernels`, each speaking
 * the wire `AiosConfig.backend` names. The layer provides both `KernelPool` (the kernels' states, for `doctor`)
 * and `Backend`, so `Turn`, `Llm`, the CLI and the OpenClaw plugin use a pool as they use one kernel.
 *
 * - Routing, per call: among the kernels that list the model (each one's list, cached for `catalogTtlMs`) and
 *   are healthy, the one with the fewest calls in flight (ties rotate).
 * - Health: a kernel that fails for a kernel reason (unreachable, timeout, 5xx: `internal/pool/route.ts`) is
 *   ejected for `pool.ejectMs`, in `SharedState` (`kernel:<url>`), so processes sharing a Redis share it. Once
 *   the cool-down ends it is half-open: a `/status` probe runs in the background, and only a successful one
 *   brings it back; a failed one ejects it again.
 * - A call that fails for a kernel reason before any output moves at once to another healthy kernel that lists
 *   the model, each kernel at most once; a rate limit or any 4xx passes through unchanged (it is the provider's,
 *   not the kernel's), as do errors after output started. Waiting and retrying stay `TurnRetry`'s.
 * - When every kernel that lists the model is ejected, the call goes to them anyway (fewest in flight first,
 *   each at most once) rather than failing without asking: an ejection is our estimate, the kernel the authority.
 * - The model list is the union of the kernels' lists (an ejected kernel counts with its last good list); the
 *   status is ok when any kernel is, with a line per kernel.
 *
 * Time comes from the `Clock`, so a `TestClock` drives ejections and probes.
 *
 * @since 0.2.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AiosBackend from "./AiosBackend.js"
import * as AiosConfig from "./AiosConfig.js"
import * as ApiKeys from "./ApiKeys.js"
import * as Backend from "./Backend.js"
import type * as BackendError from "./BackendError.js"
import * as Member from "./internal/pool/member.js"
import { fewestInFlight, isKernelFailure } from "./internal/pool/route.js"
import * as OpenAiBackend from "./OpenAiBackend.js"
import { SharedState } from "./SharedState.js"

/**
 * A kernel's health: taking calls, ejected until its cool-down ends, or due a successful `/status` probe first.
 *
 * @since 0.2.0
 */
export type Health = Member.Health

/**
 * One kernel as the pool sees it.
 *
 * @since 0.2.0
 */
export interface KernelState {
  readonly url: string
  readonly health: Health
  /** Epoch ms when an ejected kernel's cool-down ends. */
  readonly ejectedUntil: number | undefined
  readonly inFlight: number
  /** The model names of its last good list; undefined before one was fetched. */
  readonly models: ReadonlyArray<string> | undefined
}

/**
 * One kernel's `/status` answer, or why there was none.
 *
 * @since 0.2.0
 */
export interface KernelCheck {
  readonly url: string
  readonly status: Either.Either<Backend.Status, BackendError.BackendError>
}

/**
 * @since 0.2.0
 */
export interface Service {
  /** The kernels' base URLs, as configured. */
  readonly kernels: ReadonlyArray<string>
  /** Every kernel's state now, without I/O. */
  readonly states: Effect.Effect<ReadonlyArray<KernelState>>
  /** Asks every kernel for its `/status` now, and records the answers as probes do. */
  readonly check: Effect.Effect<ReadonlyArray<KernelCheck>>
  /** The pool as one backend (also provided as `Backend` by `layer`). */
  readonly backend: Backend.Service
}

/**
 * @since 0.2.0
 */
export class KernelPool extends Context.Tag("effect-aios/KernelPool")<KernelPool, Service>() {}

type Seen = Member.Seen

/** A routing choice; `panic` when every kernel that lists the model was ejected. */
interface Picked {
  readonly member: Member.Member
  readonly panic: boolean
}

const servesModel = (seen: Seen, model: string): boolean =>
  Option.isSome(seen.state.listing) && seen.state.listing.value.names.has(model)

/**
 * Builds the pool over `AiosConfig.kernels` (one kernel, `baseUrl`, when none are set).
 *
 * @since 0.2.0
 */
export const make: Effect.Effect<
  Service,
  never,
  HttpClient.HttpClient | AiosConfig.AiosConfig | SharedState | Scope.Scope
> = Effect.gen(function*() {
  const config = yield* AiosConfig.AiosConfig
  const env: Member.Env = {
    shared: yield* SharedState,
    scope: yield* Effect.scope,
    ejectMs: config.pool.ejectMs,
    ttlMs: config.catalogTtlMs
  }
  const urls: readonly [string, ...Array<string>] = config.kernels !== undefined && config.kernels.length > 0
    ? [config.kernels[0]!, ...config.kernels.slice(1)]
    : [config.baseUrl]
  const forUrl = (url: string) => Effect.provideService(AiosConfig.AiosConfig, { ...config, baseUrl: url })
  // One key rotation for every `/v1` endpoint: the keys are the provider's, wherever the call goes.
  const wire: (url: string) => Effect.Effect<Backend.Service, never, HttpClient.HttpClient> =
    config.backend === "openai-compatible"
      ? yield* Effect.map(Layer.build(ApiKeys.layer), (keys) => (url: string) =>
        OpenAiBackend.make.pipe(Effect.provide(keys), forUrl(url)))
      : (url) => forUrl(url)(AiosBackend.make)
  const members = yield* Effect.forEach(urls, (url) => Effect.map(wire(url), (backend) => Member.make(url, backend)))
  const first = members[0]!
  let rotation = 0

  const snapshotAt = (now: number) => Member.healthAll(env, members, now)
  const snapshot = Effect.flatMap(Clock.currentTimeMillis, snapshotAt)

  const pick = (candidates: ReadonlyArray<Seen>, panic = false): Option.Option<Picked> => {
    const i = fewestInFlight(candidates.map((c) => c.member.load.inFlight), rotation++)
    return i < 0 ? Option.none() : Option.some({ member: candidates[i]!.member, panic })
  }

  /**
   * The kernel for a call to `model`, none of `tried`. `panic`: when every kernel that lists the model is
   * ejected, still pick one. A first attempt may; a move may only when the call began that way (with a healthy
   * kernel at hand, a move never goes to one known to be failing, which may be a hung one).
   */
  const choose = (
    model: string,
    tried: ReadonlySet<Member.Member>,
    panic: boolean
  ): Effect.Effect<Option.Option<Picked>> =>
    Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      // The common case, decided in this one step: every kernel healthy (as last read), its list known and fresh.
      const seen = Member.unsafeHealthNow(members, now)
      if (seen !== undefined) {
        const settled = seen.every((s) =>
          s.health === "healthy" && Option.isSome(s.state.listing) && now - s.state.listing.value.at < env.ttlMs
        )
        const healthy = settled ? seen.filter(openTo(seen, model, tried)) : []
        if (healthy.length > 0) return Effect.succeed(pick(healthy))
      }
      return Effect.flatMap(snapshotAt(now), (fresh) => chooseSlowly(model, tried, panic, now, fresh))
    })

  /** Kernels not tried yet that list `model`, or any not tried when no kernel lists it. */
  const openTo = (seen: ReadonlyArray<Seen>, model: string, tried: ReadonlySet<Member.Member>) => {
    // A model no kernel lists (an endpoint that lists nothing, say) may go anywhere: the kernel will answer.
    const listed = seen.some((s) => servesModel(s, model))
    return (s: Seen) => !tried.has(s.member) && (!listed || servesModel(s, model))
  }

  const chooseSlowly = (
    model: string,
    tried: ReadonlySet<Member.Member>,
    panic: boolean,
    now: number,
    initial: ReadonlyArray<Seen>
  ): Effect.Effect<Option.Option<Picked>> =>
    Effect.gen(function*() {
      let seen = initial
      for (const s of seen) {
        if (s.health === "half-open") yield* Member.probe(env, s.member)
        else if (s.health === "healthy") yield* Member.refreshIfStale(env, s.member, s.state, now)
      }
      // A kernel whose list was never fetched (e.g. down at start) might serve the model: ask before choosing
      // (not again within the TTL when asking failed: an endpoint without a model list would cost every call).
      const unlisted = seen.filter((s) =>
        s.health === "healthy" && !tried.has(s.member) && Option.isNone(s.state.listing) &&
        now - s.state.listFailedAt >= env.ttlMs
      )
      if (unlisted.length > 0) {
        yield* Effect.forEach(unlisted, (s) => Effect.ignore(Member.fetchListing(env, s.member)), {
          concurrency: "unbounded",
          discard: true
        })
        seen = yield* snapshot
      }
      const open = openTo(seen, model, tried)
      const healthy = seen.filter((s) => s.health === "healthy" && open(s))
      if (healthy.length > 0) return pick(healthy)
      const halfOpen = seen.filter((s) => s.health === "half-open" && open(s))
      if (halfOpen.length > 0) {
        yield* Effect.forEach(halfOpen, (s) => Effect.flatMap(Member.probe(env, s.member), Deferred.await), {
          concurrency: "unbounded",
          discard: true
        })
        const after = (yield* snapshot).filter((s) => s.health === "healthy" && open(s))
        if (after.length > 0) return pick(after)
      }
      return panic ? pick(seen.filter(open), true) : Option.none()
    })

  /**
   * The call on the kernel `route` picks; a kernel failure before any output moves it to another kernel. The
   * kernel counts the call in flight from the step that picks it to the end of its stream. Few stream stages:
   * each costs every call.
   */
  const on = (
    request: Backend.Request,
    route: Effect.Effect<Picked, BackendError.BackendError>,
    tried: ReadonlySet<Member.Member>
  ): Stream.Stream<Backend.Chunk, BackendError.BackendError> =>
    Stream.suspend(() => {
      let picked: Picked | undefined
      let started = false
      const moveOrFail = (error: BackendError.BackendError, { member, panic }: Picked) =>
        Effect.gen(function*() {
          yield* Member.eject(env, member, error.message)
          if (started) return Stream.fail(error)
          const next = new Set(tried).add(member)
          const moved = Effect.flatMap(choose(request.model, next, panic), (other) =>
            Option.isNone(other) ? Effect.fail(error) : Effect.as(
              Effect.logInfo("call moved to another kernel").pipe(
                Effect.annotateLogs({ model: request.model, from: member.url, to: other.value.member.url, kind: error.kind })
              ),
              other.value
            ))
          return on(request, moved, next)
        })
      // `Channel.unwrap` rather than `Stream.unwrap`: a plain sequence, not a stream of streams to flatten.
      return Stream.fromChannel(Channel.unwrap(Effect.map(route, (chosen) => {
        // Counted in the same step that records it, so the finaliser below (already in place) always uncounts it.
        picked = chosen
        chosen.member.load.inFlight++
        const reply = chosen.member.backend.stream(request)
        // A backend that answers in one piece fails, if at all, before any output: nothing to watch.
        return Stream.toChannel(
          chosen.member.backend.capabilities.streams
            ? Stream.mapChunks(reply, (chunk) => {
              if (Chunk.isNonEmpty(chunk)) started = true
              return chunk
            })
            : reply
        )
      }))).pipe(
        Stream.ensuring(Effect.sync(() => {
          if (picked !== undefined) picked.member.load.inFlight--
        })),
        Stream.catchAll((error) =>
          picked !== undefined && isKernelFailure(error) ? Stream.unwrap(moveOrFail(error, picked)) : Stream.fail(error)
        )
      )
    })

  const stream: Backend.Service["stream"] = (request) =>
    on(request, Effect.map(choose(request.model, new Set(), true), Option.getOrElse(() => ({ member: first, panic: true }))), new Set())

  /** A kernel's list for the union: fresh from a healthy one, else (or when that fails) its last good one. */
  const listOf = (s: Seen): Effect.Effect<Either.Either<ReadonlyArray<Backend.Model>, BackendError.BackendError | undefined>> => {
    const lastGood = (listing: Seen["state"]["listing"], error: BackendError.BackendError | undefined) =>
      Option.match(listing, {
        onNone: () => Either.left(error),
        onSome: (l) => Either.right(l.models)
      })
    if (s.health !== "healthy") return Effect.succeed(lastGood(s.state.listing, undefined))
    return Effect.matchEffect(Member.fetchListing(env, s.member), {
      onSuccess: (l) => Effect.succeed(Either.right(l.models)),
      onFailure: (error) => Effect.map(Member.current(s.member), (state) => lastGood(state.listing, error))
    })
  }

  const listModels: Backend.Service["listModels"] = Effect.gen(function*() {
    const lists = yield* Effect.forEach(yield* snapshot, listOf, { concurrency: "unbounded" })
    const good = lists.flatMap((l) => (Either.isRight(l) ? [l.right] : []))
    if (good.length === 0) {
      const error = lists.flatMap((l) => (Either.isLeft(l) && l.left !== undefined ? [l.left] : []))[0]
      // Every kernel ejected before any list came: ask the first, whose error then says what is wrong.
      return yield* (error !== undefined ? Effect.fail(error) : first.backend.listModels)
    }
    const byName = new Map<string, Backend.Model>()
    for (const model of good.flat()) if (!byName.has(model.name)) byName.set(model.name, model)
    return [...byName.values()]
  })

  const check: Service["check"] = Effect.forEach(
    members,
    (member) => Effect.map(Member.check(env, member), (status): KernelCheck => ({ url: member.url, status })),
    { concurrency: "unbounded" }
  )

  const status: Backend.Service["status"] = Effect.flatMap(check, (checks) => {
    const answered = checks.flatMap((c) => (Either.isRight(c.status) ? [{ url: c.url, status: c.status.right }] : []))
    const failed = checks.flatMap((c) => (Either.isLeft(c.status) ? [c.status.left] : []))
    if (answered.length === 0) return Effect.fail(failed[0]!)
    const ok = answered.filter((a) => a.status.ok).length
    const lines = checks.map((c) =>
      `${c.url}: ${Either.match(c.status, { onLeft: (e) => e.message, onRight: (s) => `${s.ok ? "ok" : "degraded"} (${s.message})` })}`
    )
    return Effect.succeed({
      ok: ok > 0,
      message: `${ok} of ${checks.length} kernels ok; ${lines.join("; ")}`,
      inactiveComponents: answered.flatMap((a) => a.status.inactiveComponents.map((c) => `${a.url}: ${c}`))
    })
  })

  const states: Service["states"] = Effect.map(snapshot, (seen) =>
    seen.map((s): KernelState => ({
      url: s.member.url,
      health: s.health,
      ejectedUntil: Option.getOrUndefined(s.until),
      inFlight: s.member.load.inFlight,
      models: Option.getOrUndefined(Option.map(s.state.listing, (l) => l.models.map((m) => m.name)))
    })))

  const backend: Backend.Service = {
    url: urls.join(", "),
    capabilities: first.backend.capabilities,
    status,
    listModels,
    stream
  }
  return { kernels: urls, states, check, backend } satisfies Service
})

/**
 * The pool as `KernelPool` and as `Backend`; provide an `HttpClient`, an `AiosConfig` and a `SharedState`.
 *
 * @since 0.2.0
 */
export const layer: Layer.Layer<
  KernelPool | Backend.Backend,
  never,
  HttpClient.HttpClient | AiosConfig.AiosConfig | SharedState
> = Layer.scopedContext(
  Effect.map(make, (pool) => Context.make(KernelPool, pool).pipe(Context.add(Backend.Backend, pool.backend)))
)
