import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as AiosBackend from "./src/AiosBackend.ts"
import * as AiosConfig from "./src/AiosConfig.ts"
import * as Backend from "./src/Backend.ts"
import * as KernelPool from "./src/KernelPool.ts"
import * as SharedState from "./src/SharedState.ts"
const listBody = JSON.stringify({ status: "success", llms: [{ name: "echo" }] })
const queryBody = JSON.stringify({ response: { response_message: "hello", status_code: 200 } })
const fake = Layer.succeed(HttpClient.HttpClient, HttpClient.make((req) =>
  Effect.succeed(HttpClientResponse.fromWeb(req, new Response(req.url.endsWith("/core/llms/list") ? listBody : queryBody, { status: 200 })))))
const url = "http://127.0.0.1:9"; (globalThis as any).W5V = process.argv[2]
const direct = ManagedRuntime.make(AiosBackend.layer.pipe(Layer.provide(Layer.merge(AiosConfig.layer({ baseUrl: url }), fake))))
const pool = ManagedRuntime.make(KernelPool.layer.pipe(Layer.provide(Layer.mergeAll(AiosConfig.layer({ kernels: [url] }), SharedState.layerMemory, fake))))
const call = Backend.call({ model: "echo", messages: [{ role: "user", content: "hello" }] })
const loop = (rt: any, n: number) => rt.runPromise(Effect.repeatN(call, n - 1))
const cpu = async (rt: any, n: number) => { const c = process.cpuUsage(); await loop(rt, n); const u = process.cpuUsage(c); return (u.user + u.system) / n }
await loop(direct, 1000); await loop(pool, 1000)
const ds: number[] = [], ps: number[] = []
for (let r = 0; r < 10; r++) { ds.push(await cpu(direct, 300)); ps.push(await cpu(pool, 300)) }
ds.sort((a, b) => a - b); ps.sort((a, b) => a - b)
console.log(`median cpu/call direct ${ds[5]!.toFixed(1)} µs  pool ${ps[5]!.toFixed(1)} µs  added ${(ps[5]! - ds[5]!).toFixed(1)} µs (min ${ds[0]!.toFixed(1)} vs ${ps[0]!.toFixed(1)})`)
await direct.dispose(); await pool.dispose()
