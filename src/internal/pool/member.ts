/**
 * One kernel of a pool: its wire `Backend`, the calls in flight on it, its model list (cached for
 * `catalogTtlMs`, the last good one kept) and its health. Ejections live in `SharedState` (`kernel:<url>`), so
 * processes sharing a Redis share them; whether this process still owes a kernel a probe is local.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Backend from "../../Backend.js"
import type * as BackendError from "../../BackendError.js"
import type * as SharedState from "../../SharedState.js"
import { isKernelFailure } from "./route.js"

/** A kernel's health: taking calls, ejected until its cool-down ends, or due a `/status` probe first. */
export type Health = "healthy" | "ejected" | "half-open"

/** A model list as fetched, with its names for lookups. */
export interface Listing {
  readonly models: ReadonlyArray<Backend.Model>
  readonly names: ReadonlySet<string>
  readonly at: number
}

interface State {
  /** The kernel's ejection as last read from `SharedState` (or set here): epoch ms, 0 when none. */
  readonly ejectedUntil: number
  /** When `ejectedUntil` was last read from `SharedState`. */
  readonly readAt: number
  /** This process saw the kernel ejected: it gets calls again only after a successful probe. */
  readonly needsProbe: boolean
  readonly probe: Option.Option<Deferred.Deferred<boolean>>
  readonly listing: Option.Option<Listing>
  /** When fetching the list last failed: with no list yet, routing asks again only after `catalogTtlMs`. */
  readonly listFailedAt: number
  readonly listFetch: Option.Option<Deferred.Deferred<Listing, BackendError.BackendError>>
}

/**
 * One kernel of the pool. Its state is a plain cell, read and replaced only inside synchronous steps (`modify`,
 * `current`), so each change is atomic as a `Ref`'s would be; routing reads it on every call without an effect
 * per kernel.
 */
export interface Member {
  readonly url: string
  readonly backend: Backend.Service
  readonly cell: { current: State }
  /** Calls in flight on it, counted by the call's own stream (see `KernelPool`). */
  readonly load: { inFlight: number }
}

/** Replaces `member`'s state by `f`'s, returning `f`'s answer, in one synchronous step. */
const modify = <B>(member: Member, f: (s: State) => readonly [B, State]): Effect.Effect<B> =>
  Effect.sync(() => {
    const [answer, next] = f(member.cell.current)
    member.cell.current = next
    return answer
  })

const update = (member: Member, f: (s: State) => State): Effect.Effect<void> =>
  Effect.sync(() => {
    member.cell.current = f(member.cell.current)
  })

/** `member`'s state now. */
export const current = (member: Member): Effect.Effect<State> => Effect.sync(() => member.cell.current)

/** What the members' operations share. */
export interface Env {
  readonly shared: SharedState.Service
  /** Background work (probes, list refreshes) runs here, so an interrupted caller strands nobody waiting on it. */
  readonly scope: Scope.Scope
  readonly ejectMs: number
  readonly ttlMs: number
}

/** The `SharedState` cool-down key of a kernel. */
export const cooldownKey = (url: string): string => `kernel:${url}`

export const make = (url: string, backend: Backend.Service): Member => ({
  url,
  backend,
  cell: {
    current: {
      ejectedUntil: 0,
      readAt: -Infinity,
      needsProbe: false,
      probe: Option.none(),
      listing: Option.none(),
      listFailedAt: -Infinity,
      listFetch: Option.none()
    }
  },
  load: { inFlight: 0 }
})

/**
 * How often a kernel's ejection is read again from `SharedState`: ejections made by other processes are seen
 * within this time, and a call costs no shared-state round trip (with Redis, a network one) per kernel.
 */
export const sharedReadMs = 1_000

/** What routing sees of a kernel at one instant. */
export interface Seen {
  readonly member: Member
  readonly health: Health
  readonly until: Option.Option<number>
  readonly state: State
}

/**
 * Every kernel's health now when that needs no read of `SharedState`, else undefined. Only inside a synchronous
 * step (it may record that a kernel is owed a probe).
 */
export const unsafeHealthNow = (members: ReadonlyArray<Member>, now: number): ReadonlyArray<Seen> | undefined =>
  members.every((m) => now - m.cell.current.readAt < sharedReadMs) ? members.map((m) => classify(m, now)) : undefined

/**
 * Every kernel's health now. Seeing one ejected (by anyone) makes this process owe it a probe. Without I/O while
 * the kernels' ejections were read from `SharedState` less than `sharedReadMs` ago.
 */
export const healthAll = (env: Env, members: ReadonlyArray<Member>, now: number): Effect.Effect<ReadonlyArray<Seen>> => {
  const stale = members.filter((m) => now - m.cell.current.readAt >= sharedReadMs)
  const seeAll = () => members.map((m) => classify(m, now))
  if (stale.length === 0) return Effect.sync(seeAll)
  const read = (member: Member) =>
    Effect.flatMap(env.shared.cooldownUntil(cooldownKey(member.url)), (until) =>
      update(member, (s) => ({ ...s, ejectedUntil: Option.getOrElse(until, () => 0), readAt: now })))
  return Effect.zipRight(Effect.forEach(stale, read, { concurrency: "unbounded", discard: true }), Effect.sync(seeAll))
}

const classify = (member: Member, now: number): Seen => {
  const s = member.cell.current
  const ejected = s.ejectedUntil > now
  if (ejected && !s.needsProbe) member.cell.current = { ...s, needsProbe: true }
  const state = member.cell.current
  return {
    member,
    health: ejected ? "ejected" : state.needsProbe ? "half-open" : "healthy",
    until: ejected ? Option.some(s.ejectedUntil) : Option.none(),
    state
  }
}

/**
 * Ejects `member` for `ejectMs` after `reason` (a kernel failure, or a failed probe). Warns when it leaves the
 * pool, not again for each failure while it is out (calls still reach it when every kernel is out).
 */
export const eject = (env: Env, member: Member, reason: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    const until = (yield* Clock.currentTimeMillis) + env.ejectMs
    yield* env.shared.setCooldown(cooldownKey(member.url), until)
    const wasOut = yield* modify(member, (s) => [s.needsProbe, { ...s, needsProbe: true, ejectedUntil: until }] as const)
    yield* (wasOut ? Effect.logDebug("kernel still failing; ejected again") : Effect.logWarning("kernel ejected from the pool"))
      .pipe(Effect.annotateLogs({ url: member.url, reason, ejectMs: env.ejectMs }))
  })

/** Takes `member` back after a successful probe. */
const readmit = (env: Env, member: Member): Effect.Effect<void> =>
  Effect.gen(function*() {
    const was = yield* modify(member, (s) => [s.needsProbe, { ...s, needsProbe: false, ejectedUntil: 0 }] as const)
    yield* env.shared.clearCooldown(cooldownKey(member.url))
    if (was) yield* Effect.logInfo("kernel back in the pool").pipe(Effect.annotateLogs({ url: member.url }))
  })

/**
 * Asks `member` for its `/status` and records the answer: an ok answer re-admits it, a kernel failure ejects it.
 * A degraded answer (`ok: false`) leaves its health as it was.
 */
export const check = (env: Env, member: Member): Effect.Effect<Either.Either<Backend.Status, BackendError.BackendError>> =>
  Effect.tap(Effect.either(member.backend.status), (result) =>
    Either.isRight(result)
      ? result.right.ok ? readmit(env, member) : Effect.void
      : isKernelFailure(result.left)
      ? eject(env, member, result.left.message)
      : Effect.void)

/**
 * The half-open probe of `member`: one at a time, in the background. Its result (re-admitted or not) is the
 * Deferred's; a degraded or failed answer ejects it again.
 */
export const probe = (env: Env, member: Member): Effect.Effect<Deferred.Deferred<boolean>> =>
  Effect.gen(function*() {
    const fresh = yield* Deferred.make<boolean>()
    const [deferred, lead] = yield* modify(member, (s): readonly [readonly [Deferred.Deferred<boolean>, boolean], State] =>
      Option.isSome(s.probe) ? [[s.probe.value, false], s] : [[fresh, true], { ...s, probe: Option.some(fresh) }])
    if (!lead) return deferred
    const run = Effect.gen(function*() {
      const result = yield* check(env, member)
      const ok = Either.isRight(result) && result.right.ok
      if (!ok && (Either.isRight(result) || !isKernelFailure(result.left))) {
        yield* eject(env, member, Either.isRight(result) ? `status: ${result.right.message}` : result.left.message)
      }
      return ok
    }).pipe(
      Effect.ensuring(update(member, (s) => ({ ...s, probe: Option.none() }))),
      Effect.exit,
      Effect.flatMap((exit) => Deferred.done(deferred, Exit.isSuccess(exit) ? exit : Exit.succeed(false)))
    )
    yield* Effect.forkIn(run, env.scope)
    return deferred
  })

/**
 * A fresh model list for `member`, shared by concurrent callers. A failure keeps the last good list (for
 * routing) and, when it is the kernel's, ejects it.
 */
export const fetchListing = (env: Env, member: Member): Effect.Effect<Listing, BackendError.BackendError> =>
  Effect.gen(function*() {
    const fresh = yield* Deferred.make<Listing, BackendError.BackendError>()
    const [deferred, lead] = yield* modify(
      member,
      (s): readonly [readonly [Deferred.Deferred<Listing, BackendError.BackendError>, boolean], State] =>
        Option.isSome(s.listFetch) ? [[s.listFetch.value, false], s] : [[fresh, true], { ...s, listFetch: Option.some(fresh) }]
    )
    if (lead) {
      const run = Effect.gen(function*() {
        const exit = yield* Effect.exit(member.backend.listModels)
        const at = yield* Clock.currentTimeMillis
        const listed = Exit.map(exit, (models): Listing => ({ models, names: new Set(models.map((m) => m.name)), at }))
        yield* update(member, (s) => ({
          ...s,
          listFetch: Option.none(),
          listing: Exit.isSuccess(listed) ? Option.some(listed.value) : s.listing,
          listFailedAt: Exit.isSuccess(listed) ? s.listFailedAt : at
        }))
        if (Exit.isFailure(exit)) {
          const error = Cause.failureOption(exit.cause)
          if (Option.isSome(error) && isKernelFailure(error.value)) yield* eject(env, member, error.value.message)
        }
        yield* Deferred.done(deferred, listed)
      })
      yield* Effect.forkIn(run, env.scope)
    }
    return yield* Deferred.await(deferred)
  })

/** Starts a background refresh of a list older than the TTL (routing goes on with the stale one meanwhile). */
export const refreshIfStale = (env: Env, member: Member, state: State, now: number): Effect.Effect<void> =>
  Option.isSome(state.listing) && now - state.listing.value.at >= env.ttlMs && Option.isNone(state.listFetch)
    ? Effect.asVoid(Effect.forkIn(Effect.ignore(fetchListing(env, member)), env.scope))
    : Effect.void
