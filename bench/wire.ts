/**
 * The wires' per-call cost after issue 17's hardening (whole-call deadline, finish grace, counted body reads,
 * quoted errors), as ratios against a baseline measured in the same run:
 *
 * - A streamed body's time limits (`Http.bodyWithin`: idle timeout, whole-call deadline and finish grace, one
 *   timer per wait) vs the idle timeout alone (`Stream.timeoutFail`), over 2,000 in-memory pieces, p50. Target
 *   ≤ 1.3×: the deadline costs no timer of its own.
 * - `Redact.quote` of a 1 MB hostile text (credential-shaped fragments everywhere, 512 known secrets) vs the
 *   first 4 KB of it: the quote reads a bounded prefix, so a huge body costs what a short one does. Target ≤ 1.5×.
 * - For information, `Backend.call` over `OpenAiBackend` (a streamed reply, every event decoded) vs a raw `fetch`
 *   reading the SSE body by hand to `[DONE]`, and over `AiosBackend` vs a raw `fetch` + `res.json()`, p50.
 *
 * Run alone: `npx tsx bench/runSuite.ts bench/wire.ts`.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as AiosBackend from "../src/AiosBackend.js"
import * as AiosConfig from "../src/AiosConfig.js"
import * as Backend from "../src/Backend.js"
import * as Http from "../src/internal/http.js"
import * as Redact from "../src/internal/redact.js"
import * as OpenAiBackend from "../src/OpenAiBackend.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { percentile, sample, type BenchRow } from "./util.js"

const N = 400
const TEXT = "A reply of a realistic length, streamed in small pieces so that the decoder sees many events. ".repeat(4)

const ms = (x: number) => `${x.toFixed(3)} ms`

/** Interleaved rounds, so drift hits both sides alike; p50 of each. */
const compare = async (base: () => Promise<unknown>, ours: () => Promise<unknown>, n = N) => {
  await sample(50, base)
  await sample(50, ours)
  const baseTimes: Array<number> = []
  const ourTimes: Array<number> = []
  for (let round = 0; round < 4; round++) {
    baseTimes.push(...(await sample(n / 4, base)))
    ourTimes.push(...(await sample(n / 4, ours)))
  }
  return { base: percentile(baseTimes, 50), ours: percentile(ourTimes, 50) }
}

export const run = async (): Promise<Array<BenchRow>> => {
  const kernel = await startReferenceKernel({ streamChunkChars: 16 })
  const runtime = (config: AiosConfig.AiosConfigInput, backend: typeof AiosBackend.layer) =>
    ManagedRuntime.make(backend.pipe(Layer.provide(Layer.merge(AiosConfig.layer(config), NodeHttpClient.layerUndici))))
  const v1 = runtime({ backend: "openai-compatible", baseUrl: `${kernel.url}/v1` }, OpenAiBackend.layer)
  const aios = runtime({ baseUrl: kernel.url }, AiosBackend.layer)
  const messages = [{ role: "user" as const, content: TEXT }]
  const rows: Array<BenchRow> = []
  try {
    // /v1: the body the backend sends, read by hand.
    const body = JSON.stringify({ model: "echo", messages, stream: true, stream_options: { include_usage: true } })
    const rawV1 = async () => {
      const res = await fetch(`${kernel.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body
      })
      const decoder = new TextDecoder()
      let buffer = ""
      let text = ""
      for await (const bytes of res.body!) {
        buffer += decoder.decode(bytes, { stream: true })
        let cut: number
        while ((cut = buffer.indexOf("\n\n")) !== -1) {
          const data = buffer.slice(0, cut).replace(/^data: /, "")
          buffer = buffer.slice(cut + 2)
          if (data === "[DONE]") continue
          text += (JSON.parse(data) as { choices: Array<{ delta?: { content?: string } }> }).choices[0]?.delta?.content ?? ""
        }
      }
      return text
    }
    const call = Backend.call({ model: "echo", messages })
    if ((await rawV1()) !== (await v1.runPromise(call)).text) throw new Error("the two /v1 reads disagree")
    const s = await compare(rawV1, () => v1.runPromise(call))
    rows.push({
      name: "wire: /v1 Backend.call vs raw fetch + SSE",
      ratio: s.ours / s.base,
      target: "",
      detail: `p50 ${ms(s.ours)} vs ${ms(s.base)} (${Math.ceil(TEXT.length / 16)} content events)`
    })

    const queryBody = JSON.stringify({
      agent_name: "openclaw",
      query_type: "llm",
      query_data: { messages, llms: [{ name: "echo" }], tools: [], action_type: "chat", message_return_type: "text" }
    })
    const rawQuery = async () => {
      const res = await fetch(`${kernel.url}/query`, { method: "POST", headers: { "content-type": "application/json" }, body: queryBody })
      return ((await res.json()) as { response: { response_message: string } }).response.response_message
    }
    const a = await compare(rawQuery, () => aios.runPromise(call))
    rows.push({
      name: "wire: AIOS Backend.call vs raw fetch",
      ratio: a.ours / a.base,
      target: "",
      detail: `p50 ${ms(a.ours)} vs ${ms(a.base)}`
    })
  } finally {
    await v1.dispose()
    await aios.dispose()
    await kernel.close()
  }

  const pieces = Array.from({ length: 2_000 }, () => new Uint8Array(64))
  const target = { url: "http://127.0.0.1:1" }
  const drain = (bounded: (s: Stream.Stream<Uint8Array>) => Stream.Stream<Uint8Array, unknown>) => () =>
    Effect.runPromise(Stream.runDrain(bounded(Stream.fromIterable(pieces).pipe(Stream.rechunk(1)))))
  const idleOnly = drain((s) => Stream.timeoutFail(s, () => "idle", "120 seconds"))
  const limited = drain((s) =>
    Stream.unwrap(Effect.gen(function*() {
      const bounds = yield* Http.limits(120_000, 300_000)
      return Http.bodyWithin(target, bounds, yield* Ref.make<number | undefined>(undefined), 1_000)(s)
    }))
  )
  const t = await compare(idleOnly, limited, 200)
  rows.push({
    name: "wire: body limits (idle+deadline+grace) vs idle only",
    ratio: t.ours / t.base,
    target: "≤ 1.3× idle only",
    pass: t.ours / t.base <= 1.3,
    detail: `p50 ${ms(t.ours)} vs ${ms(t.base)} (2,000 pieces)`
  })

  const secrets = Redact.add(Redact.empty, Array.from({ length: 512 }, (_, i) => `SECRET-${i}-${"z".repeat(i % 64)}`))
  const hostile = "api_key=SECRET-7-zzzzzzz http://u:p@h ".repeat(30_000).slice(0, 1_000_000)
  const quote = (text: string) => async () => Redact.quote(text, secrets)
  const q = await compare(quote(hostile.slice(0, 4_096)), quote(hostile), 2_000)
  rows.push({
    name: "wire: Redact.quote 1 MB hostile vs 4 KB of it",
    ratio: q.ours / q.base,
    target: "≤ 1.5× 4 KB",
    pass: q.ours / q.base <= 1.5,
    detail: `p50 ${ms(q.ours)} vs ${ms(q.base)}`
  })
  return rows
}
