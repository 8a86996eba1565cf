/**
 * The kernel pool. (1) Throughput: a burst of calls to 4 pooled ReferenceKernels that batch like AIOS (one batch a
 * second, its calls run one after another) against the same burst to one such kernel, timed from the batch
 * wake-up that takes the burst to its last answer. The kernels wake on wall-clock seconds and the burst is sent
 * just before one, so neither side waits for a wake-up the other does not: the wait before the first batch is the
 * scheduler's, the same for one kernel or four, and what a pool can change is the work after it. The wall time
 * from sending is reported beside it. (2) The added cost of the pool: `Backend.call` through a pool of one
 * kernel against the plain backend, p50, same kernel.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as AiosBackend from "../src/AiosBackend.js"
import * as AiosConfig from "../src/AiosConfig.js"
import * as Backend from "../src/Backend.js"
import * as KernelPool from "../src/KernelPool.js"
import * as SharedState from "../src/SharedState.js"
import { type Handle, startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { percentile, sample, type BenchRow } from "./util.js"

const BATCH_MS = 1_000
const CALL_MS = 100
const BURST = 40
const LEAD_MS = 400
const N = 1_000

const plain = (url: string) =>
  ManagedRuntime.make(AiosBackend.layer.pipe(Layer.provide(Layer.merge(AiosConfig.layer({ baseUrl: url }), NodeHttpClient.layerUndici))))

const pooled = (urls: ReadonlyArray<string>) =>
  ManagedRuntime.make(
    KernelPool.layer.pipe(
      Layer.provide(Layer.mergeAll(AiosConfig.layer({ kernels: [...urls] }), SharedState.layerMemory, NodeHttpClient.layerUndici))
    )
  )

type Runtime = ManagedRuntime.ManagedRuntime<Backend.Backend, unknown>

const call = (content: string) => Backend.call({ model: "echo", messages: [{ role: "user", content }] })

/** Waits until `LEAD_MS` before the next wall-clock batch wake-up. */
const beforeWakeUp = () =>
  new Promise<void>((resolve) => setTimeout(resolve, (BATCH_MS - (Date.now() % BATCH_MS) - LEAD_MS + BATCH_MS) % BATCH_MS))

interface Timing {
  /** From the wake-up that takes the burst to the last answer. */
  readonly work: number
  /** From sending the burst to the last answer. */
  readonly wall: number
}

/** One burst of `BURST` concurrent calls, sent just before a wake-up. */
const burst = async (runtime: Runtime): Promise<Timing> => {
  await beforeWakeUp()
  const sent = Date.now()
  const wakeUp = sent + BATCH_MS - (sent % BATCH_MS)
  await Promise.all(Array.from({ length: BURST }, (_, i) => runtime.runPromise(call(`call ${i}`))))
  const done = Date.now()
  return { work: done - wakeUp, wall: done - sent }
}

const throughput = async (): Promise<BenchRow> => {
  const kernels: Array<Handle> = []
  const runtimes: Array<Runtime> = []
  try {
    for (let i = 0; i < 5; i++) kernels.push(await startReferenceKernel({ batchIntervalMs: BATCH_MS, latencyMs: 1 }))
    const [solo, ...pool] = kernels
    const one = plain(solo!.url)
    const four = pooled(pool.map((k) => k.url))
    runtimes.push(one, four)
    // Each side warms up with short calls (sockets for a whole burst, the pool's model lists, the JIT) right before
    // its burst: a socket idle past the server's keep-alive timeout would be reconnected inside the timing.
    const measure = async (runtime: Runtime, serving: ReadonlyArray<Handle>) => {
      for (const k of serving) k.setLatency(1)
      await burst(runtime)
      for (const k of serving) {
        k.setLatency(CALL_MS)
        k.reset()
      }
      return burst(runtime)
    }
    const oneRun = await measure(one, [solo!])
    const fourRun = await measure(four, pool)
    const ratio = oneRun.work / fourRun.work
    const spread = pool.map((k) => k.count("/query")).join("/")
    const rate = (ms: number) => `${(BURST / ms * 1000).toFixed(1)}/s`
    return {
      name: "pool: 4 batching kernels vs 1, throughput",
      ratio,
      target: "≥ 3.5× one kernel",
      pass: ratio >= 3.5,
      detail: `${BURST} calls of ${CALL_MS} ms, one batch/${BATCH_MS} ms, from the wake-up: 1 kernel ${rate(oneRun.work)} ` +
        `(${oneRun.work} ms), 4 pooled ${rate(fourRun.work)} (${fourRun.work} ms); wall from sending ${oneRun.wall} ms vs ` +
        `${fourRun.wall} ms; calls per pooled kernel ${spread}`
    }
  } finally {
    for (const r of runtimes) await r.dispose()
    for (const k of kernels) await k.close()
  }
}

const overhead = async (): Promise<BenchRow> => {
  const kernel = await startReferenceKernel()
  const direct = plain(kernel.url)
  const pool = pooled([kernel.url])
  try {
    const viaDirect = () => direct.runPromise(call("hello"))
    const viaPool = () => pool.runPromise(call("hello"))
    await sample(200, viaDirect)
    await sample(200, viaPool)
    // Call by call, alternating which goes first, so drift and load from elsewhere hit both alike.
    const directTimes: Array<number> = []
    const poolTimes: Array<number> = []
    for (let i = 0; i < N; i++) {
      const [first, second] = i % 2 === 0 ? [directTimes, poolTimes] : [poolTimes, directTimes]
      first.push(...(await sample(1, i % 2 === 0 ? viaDirect : viaPool)))
      second.push(...(await sample(1, i % 2 === 0 ? viaPool : viaDirect)))
    }
    const directP50 = percentile(directTimes, 50)
    const poolP50 = percentile(poolTimes, 50)
    const ratio = poolP50 / directP50
    return {
      name: "pool of 1 vs no pool, Backend.call (p50)",
      ratio,
      target: "≤ 1.1× no pool",
      pass: ratio <= 1.1,
      detail: `pool p50 ${poolP50.toFixed(3)} ms, plain backend p50 ${directP50.toFixed(3)} ms, n=${N}`
    }
  } finally {
    await direct.dispose()
    await pool.dispose()
    await kernel.close()
  }
}

export const run = async (): Promise<Array<BenchRow>> => [await throughput(), await overhead()]

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./util.js")
  printTable(await run())
}
