/**
 * The added time per call of Redis-backed limits: `Llm.generate` against one reference kernel with a
 * concurrency cap and a rate limit (high enough never to wait), the limits in memory vs in a loopback
 * `redis-server` (started here), p50 of each, interleaved rounds. Informs; no target.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { spawn, spawnSync } from "node:child_process"
import { freePort } from "../test/util.js"
import * as Aios from "../src/Aios.js"
import type * as AiosConfig from "../src/AiosConfig.js"
import * as Llm from "../src/Llm.js"
import * as SharedState from "../src/SharedState.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { percentile, sample, type BenchRow } from "./util.js"

const N = 400
const name = "Llm.generate, limits in Redis vs in memory (p50)"



const startRedis = async (port: number) => {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "ignore"] }
  )
  await new Promise<void>((resolve, reject) => {
    let seen = ""
    child.stdout.on("data", (d: Buffer) => {
      seen += d.toString()
      if (seen.includes("Ready to accept connections")) resolve()
    })
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code})`)))
  })
  return child
}

export const run = async (): Promise<Array<BenchRow>> => {
  if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status !== 0) {
    return [{ name, ratio: Number.NaN, target: "", detail: "skipped: no redis-server (apt-get install redis-server)" }]
  }
  const port = await freePort()
  const redis = await startRedis(port)
  const kernel = await startReferenceKernel()
  const config: AiosConfig.AiosConfigInput = {
    baseUrl: kernel.url,
    limits: { concurrency: 8, rate: { limit: 1_000_000, intervalMs: 1_000 } }
  }
  const runtimeOf = (extra: AiosConfig.AiosConfigInput) =>
    ManagedRuntime.make(Llm.layer.pipe(Layer.provideMerge(Aios.layerNode({ ...config, ...extra }))))
  const memory = runtimeOf({})
  const shared = runtimeOf({ redis: { url: `redis://127.0.0.1:${port}`, prefix: "bench" } })
  try {
    const call = Llm.generate({ prompt: "hello", model: "echo" })
    const viaMemory = () => memory.runPromise(call)
    const viaRedis = () => shared.runPromise(call)
    const status = await shared.runPromise(Effect.flatMap(SharedState.SharedState, (s) => s.status))
    if (status !== "redis") throw new Error(`the Redis-backed runtime is not using Redis (${status})`)
    // Warm both paths (JIT, sockets, script cache), then interleave rounds so drift hits both alike.
    await sample(50, viaMemory)
    await sample(50, viaRedis)
    const memoryTimes: Array<number> = []
    const redisTimes: Array<number> = []
    for (let round = 0; round < 4; round++) {
      memoryTimes.push(...(await sample(N / 4, viaMemory)))
      redisTimes.push(...(await sample(N / 4, viaRedis)))
    }
    const memoryP50 = percentile(memoryTimes, 50)
    const redisP50 = percentile(redisTimes, 50)
    return [{
      name,
      ratio: redisP50 / memoryP50,
      target: "",
      detail: `added ${(redisP50 - memoryP50).toFixed(3)} ms per call; redis p50 ${redisP50.toFixed(3)} ms, ` +
        `memory p50 ${memoryP50.toFixed(3)} ms, n=${N}`
    }]
  } finally {
    await shared.dispose()
    await memory.dispose()
    await kernel.close()
    redis.kill("SIGTERM")
  }
}
