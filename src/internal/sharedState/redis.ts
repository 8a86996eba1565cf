/**
 * The Redis-backed shared state (see `SharedState`). One ioredis client per process; rate limits go through
 * `@effect/experimental`'s `RateLimiter` over a `RateLimiterStore` on that client. (The package's own Redis
 * store opens a client of its own without an `error` listener, and ioredis then prints every failed reconnect
 * to the console; the library prints nothing, so the store here runs the same token-bucket script on our client.)
 *
 * Every operation goes through `guarded`: bounded by `timeoutMs`, and on any failure the caller gets `None` and
 * uses the in-memory state instead. The first failure of an outage logs one warning; while Redis is out,
 * operations skip it (no waiting) until the client is connected again and `retryMs` have passed; the first
 * success after that logs that the state is shared again.
 */
import * as RateLimiter from "@effect/experimental/RateLimiter"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { randomUUID } from "node:crypto"
import type { Service } from "../../SharedState.js"
import * as Memory from "./memory.js"
import * as Scripts from "./scripts.js"

/** The `redis` config key, plus tuning. */
export interface Options {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  readonly url: string
  /** Prepended (with `:`) to every key; processes share state when they use the same Redis and prefix. */
  readonly prefix?: string | undefined
  /** Bound on each Redis operation; past it the in-memory state answers. Default 250 ms. */
  readonly timeoutMs?: number | undefined
  /** While Redis is out, how often an operation tries it again (once the client has reconnected). Default 1 s. */
  readonly retryMs?: number | undefined
  /** How long a permit of a process that stopped renewing it (a crash) survives. Default 30 s. */
  readonly permitLeaseMs?: number | undefined
  /** The longest pause between two tries for a permit when all are taken. Default 100 ms. */
  readonly permitPollMs?: number | undefined
  /** How long building the layer waits for the first connection. Default 1 s. */
  readonly connectTimeoutMs?: number | undefined
}

type Script = (key: string, ...args: ReadonlyArray<string | number>) => Promise<unknown>

const defineScript = (client: Redis, name: string, lua: string): Script => {
  client.defineCommand(name, { numberOfKeys: 1, lua })
  // `defineCommand` adds a method by that name (EVALSHA, loading the script when the server lacks it).
  const command: unknown = Reflect.get(client, name)
  if (typeof command !== "function") throw new Error(`ioredis did not define the command ${name}`)
  return (key, ...args) => Promise.resolve(Reflect.apply(command, client, [key, ...args]) as unknown)
}

interface Health {
  readonly down: boolean
  /** While down: epoch ms before which operations do not try Redis. */
  readonly retryAt: number
}

/** Waits for the client's first connection (true) or its first error (false). */
const firstConnection = (client: Redis): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    if (client.status === "ready") return resume(Effect.succeed(true))
    const done = (ok: boolean) => () => {
      client.off("ready", onReady)
      client.off("error", onError)
      resume(Effect.succeed(ok))
    }
    const onReady = done(true)
    const onError = done(false)
    client.once("ready", onReady)
    client.once("error", onError)
    return Effect.sync(() => {
      client.off("ready", onReady)
      client.off("error", onError)
    })
  })

export const make = (options: Options): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const prefix = options.prefix ?? "effect-aios"
    const timeoutMs = options.timeoutMs ?? 250
    const retryMs = options.retryMs ?? 1_000
    const leaseMs = options.permitLeaseMs ?? 30_000
    const pollMs = options.permitPollMs ?? 100
    const local = yield* Memory.make
    // A password in the URL must not reach a log line through an error message.
    const password = Option.getOrUndefined(Option.liftThrowable(() => new URL(options.url).password)())
    const describe = (error: unknown): string => {
      const cause: unknown = error instanceof Error ? error.cause : undefined
      const text = error instanceof Error
        ? (cause instanceof Error ? `${error.message}: ${cause.message}` : error.message)
        : String(error)
      return (password !== undefined && password !== "" ? text.replaceAll(password, "[redacted]") : text).slice(0, 200)
    }

    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const redis = new Redis(options.url, {
          // Fail at once while disconnected (the memory state answers) instead of queueing commands that would
          // run late, after the caller gave up on them.
          enableOfflineQueue: false,
          autoResendUnfulfilledCommands: false,
          maxRetriesPerRequest: 0,
          connectTimeout: options.connectTimeoutMs ?? 1_000,
          // Reconnects forever, at most a second apart.
          retryStrategy: (times) => Math.min(times * 100, 1_000)
        })
        // Errors surface through the operations that fail; without a listener ioredis would print them.
        redis.on("error", () => {})
        return redis
      }),
      (redis) =>
        Effect.tryPromise(() => redis.quit()).pipe(
          Effect.timeout(timeoutMs),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => redis.disconnect()))
        )
    )

    const health = yield* Ref.make<Health>({ down: false, retryAt: 0 })
    const annotate = Effect.annotateLogs({ sharedState: "redis", prefix })

    const markDown = (reason: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.modify(health, (h): [boolean, Health] => [!h.down, { down: true, retryAt: now + retryMs }])).pipe(
          Effect.flatMap((wentDown) =>
            wentDown
              ? Effect.logWarning(
                `Redis unreachable (${reason}): rate limits, concurrency caps and cooldowns are this process's ` +
                  "own until it is back"
              ).pipe(annotate)
              : Effect.void
          )
        )

    const markUp = Ref.modify(health, (h): [boolean, Health] => [h.down, { down: false, retryAt: 0 }]).pipe(
      Effect.flatMap((wasDown) =>
        wasDown
          ? Effect.logInfo("Redis reachable again: rate limits, concurrency caps and cooldowns are shared again").pipe(
            annotate
          )
          : Effect.void
      )
    )

    const usable = Effect.flatMap(Ref.get(health), (h) =>
      h.down
        ? Effect.map(Clock.currentTimeMillis, (now) => client.status === "ready" && now >= h.retryAt)
        : Effect.succeed(true))

    /** `run` against Redis, bounded; `None` when Redis is out, slow or failed (the caller uses memory). */
    const guarded = <A>(run: Effect.Effect<A, unknown>): Effect.Effect<Option.Option<A>> =>
      Effect.flatMap(usable, (ok) =>
        !ok ? Effect.succeedNone : run.pipe(
          Effect.timeoutFail({ duration: Duration.millis(timeoutMs), onTimeout: () => `no answer within ${timeoutMs} ms` }),
          Effect.matchCauseEffect({
            onFailure: (cause) =>
              Effect.as(
                markDown(Option.match(Cause.failureOption(cause), {
                  onNone: () => describe(Cause.squash(cause)),
                  onSome: (e) => (typeof e === "string" ? e : describe(e))
                })),
                Option.none()
              ),
            onSuccess: (a) => Effect.as(markUp, Option.some(a))
          })
        ))

    const call = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (e) => e })

    const connected = yield* firstConnection(client).pipe(
      Effect.timeout(options.connectTimeoutMs ?? 1_000),
      Effect.orElseSucceed(() => false)
    )
    if (!connected) yield* markDown("cannot connect")

    // Rate limits: the experimental RateLimiter's token bucket ("delay": a start past the limit reserves the next
    // free slot and sleeps until it) over this client.
    const tokenBucket = defineScript(client, "effectAiosTokenBucket", Scripts.tokenBucket)
    const store = RateLimiter.RateLimiterStore.of({
      fixedWindow: () => Effect.fail(new RateLimiter.RateLimitStoreError({ message: "fixed-window is not used" })),
      tokenBucket: (o) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.tryPromise({
            try: () =>
              tokenBucket(
                `${prefix}:rate:${o.key}`,
                o.tokens,
                Duration.toMillis(o.refillRate),
                o.limit,
                now,
                o.allowOverflow ? 1 : 0
              ),
            catch: (cause) => new RateLimiter.RateLimitStoreError({ message: "tokenBucket failed", cause })
          }).pipe(
            Effect.filterOrFail(
              (n): n is number => typeof n === "number",
              () => new RateLimiter.RateLimitStoreError({ message: "tokenBucket answered a non-number" })
            )
          ))
    })
    const limiter = yield* Effect.provideService(RateLimiter.make, RateLimiter.RateLimiterStore, store)

    const rateLimit: Service["rateLimit"] = (key, limit, windowMs) =>
      Effect.flatMap(
        guarded(limiter.consume({
          key,
          limit,
          window: Duration.millis(windowMs),
          algorithm: "token-bucket",
          onExceeded: "delay"
        })),
        Option.match({
          onNone: () => local.rateLimit(key, limit, windowMs),
          onSome: ({ delay }) => (Duration.isZero(delay) ? Effect.void : Effect.sleep(delay))
        })
      )

    // Concurrency caps: a sorted set of leased permit ids per key, the lease renewed while the permit is held.
    const acquireScript = defineScript(client, "effectAiosAcquirePermit", Scripts.acquirePermit)
    const renewScript = defineScript(client, "effectAiosRenewPermit", Scripts.renewPermit)
    const owner = randomUUID()
    // Loads the scripts now, so the first calls do not pay for it inside their bound.
    if (connected) {
      yield* Effect.tryPromise(() =>
        Promise.all([Scripts.tokenBucket, Scripts.acquirePermit, Scripts.renewPermit].map((lua) => client.script("LOAD", lua)))
      ).pipe(Effect.timeout(options.connectTimeoutMs ?? 1_000), Effect.ignore)
    }
    let permits = 0
    type Outcome = "granted" | "busy" | "local"
    // Tries again while all permits are taken, 5 ms after the first miss, doubling up to `pollMs`; the result is
    // the last outcome.
    const poll = Schedule.union(Schedule.exponential(Duration.millis(5)), Schedule.spaced(Duration.millis(pollMs))).pipe(
      Schedule.whileInput((r: Outcome) => r === "busy"),
      Schedule.passthrough
    )

    /** "granted" (Redis), "busy" (all taken: try again) or "local" (Redis out: the local permit is enough). */
    const tryAcquire = (setKey: string, id: string, max: number): Effect.Effect<Outcome> =>
      Effect.map(
        guarded(call(() => acquireScript(setKey, id, max, leaseMs))),
        Option.match({ onNone: () => "local" as const, onSome: (r) => (r === 1 ? "granted" as const : "busy" as const) })
      )

    const acquirePermit: Service["acquirePermit"] = (key, max) =>
      Effect.gen(function*() {
        // The local cap holds in every case, so this process never exceeds it when Redis drops out mid-call.
        yield* local.acquirePermit(key, max)
        const setKey = `${prefix}:permits:${key}`
        const id = `${owner}:${++permits}`
        // Registered before asking: a permit granted to an attempt that then timed out or was interrupted is given
        // back too (removing an id that is not there is harmless).
        yield* Effect.addFinalizer(() => guarded(call(() => client.zrem(setKey, id))))
        const outcome = yield* Effect.repeat(tryAcquire(setKey, id, max), poll)
        if (outcome === "granted") {
          yield* guarded(call(() => renewScript(setKey, id, leaseMs))).pipe(
            Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1, Math.floor(leaseMs / 3))))),
            Effect.delay(Duration.millis(Math.max(1, Math.floor(leaseMs / 3)))),
            Effect.interruptible,
            Effect.forkScoped
          )
        }
      })

    // Cooldowns: one key per cooldown, expiring with it; this process's memory keeps a copy for outages.
    const cooldownKey = (key: string) => `${prefix}:cooldown:${key}`
    const cooldownUntil: Service["cooldownUntil"] = (key) =>
      Effect.flatMap(
        guarded(call(() => client.get(cooldownKey(key)))),
        Option.match({
          onNone: () => local.cooldownUntil(key),
          onSome: (value) =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              const until = value === null ? Number.NaN : Number(value)
              return Number.isFinite(until) && until > now ? Option.some(until) : Option.none()
            })
        })
      )

    const setCooldown: Service["setCooldown"] = (key, untilMs) =>
      Effect.zipRight(
        local.setCooldown(key, untilMs),
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const ttl = Math.ceil(untilMs - now)
          return guarded(call<unknown>(() =>
            ttl > 0 ? client.set(cooldownKey(key), String(untilMs), "PX", ttl) : client.del(cooldownKey(key))
          ))
        })
      ).pipe(Effect.asVoid)

    const clearCooldown: Service["clearCooldown"] = (key) =>
      Effect.zipRight(local.clearCooldown(key), guarded(call(() => client.del(cooldownKey(key))))).pipe(Effect.asVoid)

    return {
      cooldownUntil,
      setCooldown,
      clearCooldown,
      rateLimit,
      acquirePermit,
      withPermit: (key, max) => (effect) =>
        Effect.scopedWith((scope) => Effect.zipRight(Scope.extend(acquirePermit(key, max), scope), effect)),
      status: Effect.map(Ref.get(health), (h) => (h.down ? "redis-unreachable" : "redis"))
    } satisfies Service
  })
