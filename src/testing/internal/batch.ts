/**
 * The AIOS kernel's FIFO scheduler, as a reference kernel option (`batchIntervalMs`): it wakes on every
 * wall-clock multiple of the interval, takes the queries waiting, and runs them one after another; a query that
 * arrives meanwhile waits for a later wake-up. Wake-ups fall on wall-clock multiples so that kernels started
 * together wake together (a benchmark can then compare one kernel with several on the same footing).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { realSleep } from "./faults.js"

interface Waiting {
  readonly start: Deferred.Deferred<void>
  readonly done: Deferred.Deferred<void>
}

/** Runs `work` as one query of a batch: when the scheduler reaches it, and before the next query of the batch. */
export type Batched = <A, E, R>(work: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

export const make = (intervalMs: number): Effect.Effect<Batched, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Waiting>()
    const wakeUp = Effect.gen(function*() {
      yield* realSleep(intervalMs - (Date.now() % intervalMs))
      for (const waiting of yield* Queue.takeAll(queue)) {
        yield* Deferred.succeed(waiting.start, undefined)
        yield* Deferred.await(waiting.done)
      }
    })
    yield* Effect.forkScoped(Effect.forever(wakeUp))
    return (work) =>
      Effect.gen(function*() {
        const waiting: Waiting = { start: yield* Deferred.make<void>(), done: yield* Deferred.make<void>() }
        yield* Queue.offer(queue, waiting)
        // The kernel does not notice a client that went away, but its query must not hold up the rest.
        return yield* Effect.zipRight(Deferred.await(waiting.start), work).pipe(
          Effect.ensuring(Deferred.succeed(waiting.done, undefined))
        )
      })
  })
