/**
 * Time to first token (issue 7), as ratios against a baseline measured in the same run: the OpenClaw adapter on
 * an OpenAI-compatible endpoint (`backend: "openai-compatible"`, the reference kernel's `/v1`) against a raw
 * `fetch` of the same request body with a hand-written SSE read, to the first content delta. The server
 * streams the reply in small pieces with a real pause between them, so the reply spans time and a client that
 * buffers it would show a first token near the last.
 *
 * - adapter TTFT (stream function called → first `text_delta`) vs raw TTFT (fetch called → first non-empty
 *   `delta.content`), p50. Target: ≤ 1.15× (close to 1).
 * - adapter TTFT vs adapter time to the last token (`done`), p50: well below 1 shows it streams.
 *
 * Both sides read every event to `[DONE]` (the raw side too), and samples alternate so drift hits both alike.
 * Run alone: `npx tsx bench/ttft.ts`.
 */
import { pathToFileURL } from "node:url"
import { makeAiosProvider } from "../src/openclaw/provider.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { quietLogger, realisticContext, streamFnFor } from "./adapter.js"
import { percentile, type BenchRow } from "./util.js"

/** Characters per streamed piece and the pause between pieces: 64 characters = 8 pieces ≈ 160 ms of reply. */
const CHUNK_CHARS = 8
const DELAY_MS = 20
const USER_TEXT = "Stream this reply back in small pieces, one every twenty ms ok?!"
const N = 32

interface Timing {
  readonly first: number
  readonly last: number
  readonly text: string
}

const ms = (x: number) => `${x.toFixed(2)} ms`

export const run = async (): Promise<Array<BenchRow>> => {
  const kernel = await startReferenceKernel({ streamChunkChars: CHUNK_CHARS, streamDelayMs: DELAY_MS })
  const { logger } = quietLogger()
  const provider = makeAiosProvider(
    { backend: "openai-compatible", baseUrl: `${kernel.url}/v1`, retry: { maxRetries: 0 } },
    { logger }
  )
  try {
    const context = realisticContext(USER_TEXT)
    const { fn, model } = streamFnFor(provider, "echo")

    const viaAdapter = async (): Promise<Timing> => {
      const start = performance.now()
      let first = Number.NaN
      let text = ""
      const stream = await fn(model, context, {})
      for await (const event of stream) {
        if (event.type === "text_delta") {
          if (text === "") first = performance.now() - start
          text += event.delta
        } else if (event.type === "error") {
          throw new Error(`adapter turn failed: ${event.error.errorMessage ?? event.reason}`)
        }
      }
      await stream.result()
      return { first, last: performance.now() - start, text }
    }

    // The exact body the adapter sends, captured after a warm-up turn.
    const warm = await viaAdapter()
    const sent = kernel.requests("/v1/chat/completions")
    const body = sent[sent.length - 1]?.body
    if (body === undefined) throw new Error("no /v1/chat/completions request was recorded")
    const bodyChars = JSON.stringify(body).length

    const raw = async (): Promise<Timing> => {
      const start = performance.now()
      const res = await fetch(`${kernel.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify(body)
      })
      if (res.status !== 200 || res.body === null) throw new Error(`raw request failed: HTTP ${res.status}`)
      const decoder = new TextDecoder()
      let buffer = ""
      let first = Number.NaN
      let text = ""
      let done = false
      for await (const bytes of res.body) {
        buffer += decoder.decode(bytes, { stream: true })
        let cut: number
        while ((cut = buffer.indexOf("\n\n")) !== -1) {
          const event = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          for (const line of event.split("\n")) {
            if (!line.startsWith("data:")) continue
            const data = line.slice(5).trim()
            if (data === "[DONE]") {
              done = true
              continue
            }
            const chunk = JSON.parse(data) as { choices?: Array<{ delta?: { content?: string | null } }> }
            const content = chunk.choices?.[0]?.delta?.content
            if (typeof content === "string" && content !== "") {
              if (text === "") first = performance.now() - start
              text += content
            }
          }
        }
      }
      if (!done) throw new Error("the raw stream ended without [DONE]")
      return { first, last: performance.now() - start, text }
    }

    if ((await raw()).text !== warm.text) throw new Error("the raw request got a different reply than the adapter")
    await raw()
    await viaAdapter()
    kernel.reset()

    const adapterTimes: Array<Timing> = []
    const rawTimes: Array<Timing> = []
    for (let i = 0; i < N; i++) {
      // Alternate which goes first, so neither always follows the other.
      if (i % 2 === 0) {
        adapterTimes.push(await viaAdapter())
        rawTimes.push(await raw())
      } else {
        rawTimes.push(await raw())
        adapterTimes.push(await viaAdapter())
      }
      kernel.reset()
    }
    const p50 = (xs: ReadonlyArray<Timing>, key: "first" | "last") => percentile(xs.map((t) => t[key]), 50)
    const adapterFirst = p50(adapterTimes, "first")
    const adapterLast = p50(adapterTimes, "last")
    const rawFirst = p50(rawTimes, "first")
    const rawLast = p50(rawTimes, "last")
    const ratio = adapterFirst / rawFirst
    const streams = adapterFirst / adapterLast
    const pieces = Math.ceil(warm.text.length / CHUNK_CHARS)
    return [
      {
        name: "time to first token: adapter vs raw SSE read (p50)",
        ratio,
        target: "≤ 1.15× (close to 1)",
        pass: ratio <= 1.15,
        detail: `adapter ${ms(adapterFirst)}, raw ${ms(rawFirst)} (+${ms(adapterFirst - rawFirst)}); to the last token: ` +
          `adapter ${ms(adapterLast)}, raw ${ms(rawLast)}; ${pieces} pieces of ${CHUNK_CHARS} chars, ${DELAY_MS} ms apart; ` +
          `OpenClaw-like context, body ${bodyChars} chars; n=${N}`
      },
      {
        name: "adapter first token vs last token (it streams)",
        ratio: streams,
        target: "≤ 0.5",
        pass: streams <= 0.5,
        detail: `first ${ms(adapterFirst)}, last ${ms(adapterLast)}; a buffering client would be near 1`
      }
    ]
  } finally {
    await provider.dispose()
    await kernel.close()
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain) {
  const { printTable } = await import("./util.js")
  printTable(await run())
}
