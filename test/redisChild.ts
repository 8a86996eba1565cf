/**
 * A second process for the Redis tests (`node --import tsx test/redisChild.ts '<json>'`). Protocol on stdout:
 * `ready` when set up, then (after `go` on stdin, for `calls`) one `result {json}` line; `held` for `hold`.
 *
 * - `calls`: `Llm` over `Aios.layerNode` with `redis` configured; `calls` generate calls, `concurrency` at a time.
 * - `cool`: through the shared state, cools down the first of `keys` (a 429 asking for 60 s) and ejects `kernel`.
 * - `hold`: takes the one permit of `key` (lease `leaseMs`) and keeps it until killed.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createInterface } from "node:readline"
import * as Aios from "../src/Aios.js"
import * as ApiKeys from "../src/ApiKeys.js"
import * as BackendError from "../src/BackendError.js"
import * as Llm from "../src/Llm.js"
import * as SharedState from "../src/SharedState.js"

export type Command =
  | {
    readonly mode: "calls"
    readonly kernelUrl: string
    readonly redisUrl: string
    readonly prefix: string
    readonly calls: number
    readonly concurrency: number
    readonly maxConcurrency: number
    readonly rate?: { readonly limit: number; readonly intervalMs: number } | undefined
  }
  | {
    readonly mode: "cool"
    readonly redisUrl: string
    readonly prefix: string
    readonly keys: ReadonlyArray<string>
    readonly kernel: string
  }
  | { readonly mode: "hold"; readonly redisUrl: string; readonly prefix: string; readonly key: string; readonly leaseMs: number }

const say = (line: string) => Effect.sync(() => process.stdout.write(`${line}\n`))

const go = Effect.async<void>((resume) => {
  const lines = createInterface({ input: process.stdin })
  lines.on("line", (line) => {
    if (line.trim() === "go") {
      lines.close()
      resume(Effect.void)
    }
  })
})

const program = (command: Command): Effect.Effect<void, unknown> => {
  switch (command.mode) {
    case "calls": {
      const stack = Llm.layer.pipe(Layer.provideMerge(Aios.layerNode({
        baseUrl: command.kernelUrl,
        redis: { url: command.redisUrl, prefix: command.prefix },
        limits: { concurrency: command.maxConcurrency, ...(command.rate === undefined ? {} : { rate: command.rate }) }
      })))
      return Effect.gen(function*() {
        const llm = yield* Llm.Llm
        // Fetches the catalog now, so the timed part is calls only.
        yield* llm.resolveModel("echo")
        yield* say("ready")
        yield* go
        const exits = yield* Effect.forEach(
          Array.from({ length: command.calls }, (_, i) => i),
          (i) => Effect.exit(llm.generate({ prompt: `call ${i}`, model: "echo" })),
          { concurrency: command.concurrency }
        )
        const ok = exits.filter((e) => e._tag === "Success").length
        const status = yield* Effect.flatMap(SharedState.SharedState, (s) => s.status)
        yield* say(`result ${JSON.stringify({ ok, failed: exits.length - ok, status })}`)
      }).pipe(Effect.provide(stack))
    }
    case "cool":
      return Effect.gen(function*() {
        const shared = yield* SharedState.SharedState
        const keys = yield* ApiKeys.make(command.keys.map((k) => Redacted.make(k))).pipe(
          Effect.provideService(SharedState.SharedState, shared)
        )
        const first = Option.getOrThrow(yield* keys.next())
        yield* keys.failed(first, BackendError.rejected({ url: "http://127.0.0.1:1/v1", status: 429, reason: "slow down", retryAfterMs: 60_000 }))
        const now = Date.now()
        yield* shared.setCooldown(`kernel:${command.kernel}`, now + 60_000)
        yield* say(`ready`)
        yield* say(`result ${JSON.stringify({ status: yield* shared.status })}`)
      }).pipe(Effect.provide(SharedState.layerRedis({ url: command.redisUrl, prefix: command.prefix })))
    case "hold":
      return Effect.gen(function*() {
        const shared = yield* SharedState.SharedState
        yield* shared.acquirePermit(command.key, 1)
        yield* say(`held ${yield* shared.status}`)
        yield* Effect.never
      }).pipe(
        Effect.scoped,
        Effect.provide(SharedState.layerRedis({ url: command.redisUrl, prefix: command.prefix, permitLeaseMs: command.leaseMs }))
      )
  }
}

const command = JSON.parse(process.argv[2] ?? "{}") as Command
Effect.runPromise(program(command).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
