/**
 * Event-loop stalls (issue 17): one reply of the worst shape must not hold up the other turns of a gateway.
 *
 * - The longest event-loop stall (`perf_hooks.monitorEventLoopDelay`, 1 ms resolution) while 100 ordinary turns
 *   run concurrently (Turn over the reference kernel's streaming `/v1`, short replies) and, beside them, one
 *   worst-shape reply is parsed: one `<invoke>` of distinct `<parameter>`s filling the 1 MiB block cap, through
 *   `ToolTags.stream`, (a) streamed in 4 KiB chunks and (b) arriving as one 1 MiB chunk (a non-streamed reply).
 *   Ratio: against the same 100 turns alone (the ordinary turn's stall). Target: ≤ 2×.
 * - Time of a 20,000-character stop sequence over a 60,000-character reply in 16-character chunks, against the
 *   same reply with no stop sequence. Informs (it was seconds: every chunk re-examined the held-back text).
 *
 * Stalls are the median over rounds of each round's longest stall, rounds alternating with and without the
 * worst reply (after a full GC each), so others' load on a shared machine hits both alike. The detail also gives
 * the parse's own longest synchronous step. Run alone: `npx tsx bench/stall.ts`.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { pathToFileURL } from "node:url"
import * as Aios from "../src/Aios.js"
import * as Stop from "../src/internal/llm/stop.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import * as ToolTags from "../src/ToolTags.js"
import { Turn } from "../src/Turn.js"
import { gc } from "./adapter.js"
import type { BenchRow } from "./util.js"

const MiB = 1024 * 1024
const TURNS = 100
const ROUNDS = 9

/** One block just under the cap: one invoke of distinct parameters. */
const distinctParameters = (size: number): string => {
  const out = ["<function_calls>\n<invoke name=\"write\">\n"]
  for (let len = 128, i = 0; ; i++) {
    const p = `<parameter name="p${i}">v${i}</parameter>\n`
    if (len + p.length > size) break
    out.push(p)
    len += p.length
  }
  return out.join("") + "</invoke>\n</function_calls>"
}

const pieces = (text: string, size: number): Array<string> =>
  Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size))

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** The longest event-loop stall while `f` runs, and the longest garbage-collection pause in it, in ms. */
const longestStall = async (f: () => Promise<unknown>): Promise<readonly [number, number]> => {
  gc()
  let pause = 0
  const gcs = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pause = Math.max(pause, entry.duration)
  })
  gcs.observe({ entryTypes: ["gc"] })
  const h = monitorEventLoopDelay({ resolution: 1 })
  h.enable()
  await f()
  h.disable()
  gcs.disconnect()
  return [h.max / 1e6, pause]
}

export const run = async (): Promise<Array<BenchRow>> => {
  const out: Array<BenchRow> = []
  const kernel = await startReferenceKernel({ streamChunkChars: 16 })
  const runtime = ManagedRuntime.make(Layer.merge(
    Aios.layerNode({ backend: "openai-compatible", baseUrl: `${kernel.url}/v1` }),
    Logger.minimumLogLevel(LogLevel.None)
  ))
  try {
    const turn = (i: number) =>
      runtime.runPromise(Effect.flatMap(Turn, (t) =>
        Stream.runDrain(t.run({
          model: "echo",
          context: { messages: [{ role: "user", content: `Turn ${i}: say this back, in a few small pieces.` }] }
        }))))
    const tools = [{ name: "write" }]
    const worst = distinctParameters(MiB)
    /** The chunks through `ToolTags.stream`, each its own upstream chunk (as a network delivers them). */
    const parse = (chunks: ReadonlyArray<string>) =>
      runtime.runPromise(Stream.fromIterable(chunks).pipe(Stream.rechunk(1), ToolTags.stream({ tools }), Stream.runDrain))
    /** The parse's longest synchronous step, in ms: the same `feed` as `ToolTags.stream`, each push timed. */
    const longestStep = async (chunks: ReadonlyArray<string>): Promise<number> => {
      const parser = ToolTags.makeStreamParser({ tools })
      let longest = 0
      const timed: ToolTags.StreamParser = {
        push: (chunk) => {
          const t0 = performance.now()
          const events = parser.push(chunk)
          longest = Math.max(longest, performance.now() - t0)
          return events
        },
        end: () => parser.end(),
        buffered: 0
      }
      for (const chunk of chunks) await runtime.runPromise(ToolTags.feed(timed, chunk))
      timed.end()
      return longest
    }
    const ordinary = () => Promise.all(Array.from({ length: TURNS }, (_, i) => turn(i)))
    await ordinary()
    await parse([worst])

    for (const [label, chunks] of [["streamed in 4 KiB chunks", pieces(worst, 4096)], ["in one chunk", [worst]]] as const) {
      const alone: Array<readonly [number, number]> = []
      const beside: Array<readonly [number, number]> = []
      const steps: Array<number> = []
      for (let r = 0; r < ROUNDS; r++) {
        alone.push(await longestStall(ordinary))
        beside.push(await longestStall(() => Promise.all([ordinary(), parse(chunks)])))
        steps.push(await longestStep(chunks))
      }
      const [stallAlone, stallBeside] = [alone, beside].map((xs) => median(xs.map(([stall]) => stall)))
      const [gcAlone, gcBeside] = [alone, beside].map((xs) => median(xs.map(([, pause]) => pause)))
      const ratio = stallBeside! / stallAlone!
      out.push({
        name: `longest event-loop stall, ${TURNS} turns + a 1 MiB distinct-parameter reply ${label} vs the turns alone`,
        ratio,
        target: "≤ 2",
        pass: ratio <= 2,
        detail: `turns alone ${stallAlone!.toFixed(1)} ms, beside the reply ${stallBeside!.toFixed(1)} ms ` +
          `(median of ${ROUNDS} rounds' longest); the parse's longest step ${median(steps).toFixed(1)} ms; ` +
          `longest GC pause ${gcAlone!.toFixed(1)} / ${gcBeside!.toFixed(1)} ms`
      })
    }

    const stop = "a".repeat(19_999) + "b"
    const reply = pieces("a".repeat(60_000), 16)
    const matchAll = (stops: ReadonlyArray<string>) => {
      const t0 = performance.now()
      const step = Stop.step(stops)
      let state = Stop.initial
      for (const piece of reply) state = step(state, Option.some(piece))[0]
      step(state, Option.none())
      return performance.now() - t0
    }
    matchAll([stop])
    const withStop: Array<number> = []
    const without: Array<number> = []
    for (let r = 0; r < ROUNDS; r++) {
      withStop.push(matchAll([stop]))
      without.push(matchAll([]))
    }
    out.push({
      name: "a 20,000-char stop sequence over a 60,000-char reply in 16-char chunks vs no stop sequence: time",
      ratio: median(withStop) / median(without),
      target: "",
      detail: `with ${median(withStop).toFixed(2)} ms, without ${median(without).toFixed(2)} ms (median of ${ROUNDS})`
    })
  } finally {
    await runtime.dispose()
    await kernel.close()
  }
  return out
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain) {
  const results = await run()
  console.table(results.map((r) => ({ ...r, ratio: Number(r.ratio.toFixed(3)) })))
}
