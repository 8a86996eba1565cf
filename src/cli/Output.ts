/**
 * Where the CLI writes: stdout for results (a streamed answer arrives piece by piece, so writes carry no implied
 * newline), stderr for errors and notes. A service so that commands can run in-process with their output
 * captured (`capture`), e.g. in tests or when embedding a command.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"

/**
 * @since 0.1.0
 */
export interface Service {
  /** Writes `text` to standard output as is. */
  readonly out: (text: string) => Effect.Effect<void>
  /** Writes `text` to standard error as is. Must not suspend: the CLI's logger runs it inside a log call. */
  readonly err: (text: string) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 */
export class Output extends Context.Tag("effect-aios/cli/Output")<Output, Service>() {}

/** Writes one line to standard output. */
export const line = (text: string): Effect.Effect<void, never, Output> => Effect.flatMap(Output, (o) => o.out(`${text}\n`))

/** Writes text to standard output without a newline. */
export const write = (text: string): Effect.Effect<void, never, Output> => Effect.flatMap(Output, (o) => o.out(text))

/** Writes one line to standard error. */
export const errorLine = (text: string): Effect.Effect<void, never, Output> =>
  Effect.flatMap(Output, (o) => o.err(`${text}\n`))

/**
 * The process's stdout and stderr.
 *
 * @since 0.1.0
 */
export const layerProcess: Layer.Layer<Output> = Layer.succeed(Output, {
  out: (text) => Effect.sync(() => void process.stdout.write(text)),
  err: (text) => Effect.sync(() => void process.stderr.write(text))
})

/**
 * Output kept in memory.
 *
 * @since 0.1.0
 */
export interface Captured {
  readonly stdout: Effect.Effect<string>
  readonly stderr: Effect.Effect<string>
  /** Waits until standard output contains a match for `pattern`, and returns the match. */
  readonly waitForStdout: (pattern: RegExp) => Effect.Effect<RegExpMatchArray>
}

/**
 * An `Output` that keeps everything in memory, and a handle to read it back.
 *
 * @since 0.1.0
 */
export const capture: Effect.Effect<readonly [Service, Captured]> = Effect.gen(function*() {
  const stdout = yield* SubscriptionRef.make("")
  // A plain Ref: its update never waits, so the logger may run it synchronously.
  const stderr = yield* Ref.make("")
  const service: Service = {
    out: (text) => SubscriptionRef.update(stdout, (s) => s + text),
    err: (text) => Ref.update(stderr, (s) => s + text)
  }
  const captured: Captured = {
    stdout: SubscriptionRef.get(stdout),
    stderr: Ref.get(stderr),
    waitForStdout: (pattern) =>
      stdout.changes.pipe(
        Stream.filterMap((s) => Option.fromNullable(s.match(pattern))),
        Stream.runHead,
        Effect.flatMap(Effect.orDie)
      )
  }
  return [service, captured] as const
})
