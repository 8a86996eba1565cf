/**
 * `Backend.call` over `AiosBackend` against one raw `fetch` POST `/query` to the same reference kernel, p50 and
 * ratio.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as AiosBackend from "../src/AiosBackend.js"
import * as AiosConfig from "../src/AiosConfig.js"
import * as Backend from "../src/Backend.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { percentile, sample, type BenchRow } from "./util.js"

const N = 400

export const run = async (): Promise<Array<BenchRow>> => {
  const kernel = await startReferenceKernel()
  const runtime = ManagedRuntime.make(
    AiosBackend.layer.pipe(Layer.provide(Layer.merge(AiosConfig.layer({ baseUrl: kernel.url }), NodeHttpClient.layerUndici)))
  )
  try {
    const body = (content: string) => ({
      agent_name: "openclaw",
      query_type: "llm",
      query_data: { messages: [{ role: "user", content }], llms: [{ name: "echo" }], tools: [], action_type: "chat", message_return_type: "text" }
    })
    const raw = async () => {
      const res = await fetch(`${kernel.url}/query`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body("hello"))
      })
      const json = (await res.json()) as { response: { response_message: string } }
      return json.response.response_message
    }
    const call = Backend.call({ model: "echo", messages: [{ role: "user", content: "hello" }] })
    const viaBackend = () => runtime.runPromise(call)
    // Warm both paths (JIT, keep-alive sockets), then interleave rounds so drift hits both alike.
    await sample(50, raw)
    await sample(50, viaBackend)
    const rawTimes: Array<number> = []
    const backendTimes: Array<number> = []
    for (let round = 0; round < 4; round++) {
      rawTimes.push(...(await sample(N / 4, raw)))
      backendTimes.push(...(await sample(N / 4, viaBackend)))
    }
    const rawP50 = percentile(rawTimes, 50)
    const backendP50 = percentile(backendTimes, 50)
    const ratio = backendP50 / rawP50
    return [{
      name: "AiosBackend Backend.call vs raw fetch (p50)",
      ratio,
      target: "≤ 1.15× fetch",
      pass: ratio <= 1.15,
      detail: `backend p50 ${backendP50.toFixed(3)} ms, fetch p50 ${rawP50.toFixed(3)} ms, n=${N}`
    }]
  } finally {
    await runtime.dispose()
    await kernel.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./util.js")
  printTable(await run())
}
