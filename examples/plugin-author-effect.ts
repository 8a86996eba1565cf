/**
 * A plugin author's LLM calls with Effect: `Llm.generate` and `Llm.stream` through the kernel, with an alias,
 * a stop sequence and typed errors (`code`, and the `kind` of the backend's failure). Uses the kernel at
 * `AIOS_URL`, or starts a reference kernel on 127.0.0.1.
 *
 *   npm run example:effect
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Aios, Llm } from "../src/index.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"

const program = Effect.gen(function*() {
  const result = yield* Llm.generate({
    prompt: "Extract the company name from: Acme Corp founded in 2020",
    model: "fast",
    maxTokens: 50
  })
  console.log(`generate → ${JSON.stringify(result.text)} (model ${result.model}, ${result.usage.totalTokens} tokens` +
    `${result.usage.estimated ? " estimated" : ""}, ${result.attempts} attempt(s), ${result.latencyMs.toFixed(1)} ms)`)

  const pieces = yield* Llm.stream({ prompt: "first line\nsecond line", model: "fast", stopSequences: ["\n"] }).pipe(
    Stream.runCollect
  )
  console.log(`stream → ${JSON.stringify([...pieces].join(""))} (stopped at the first newline)`)

  // Errors are typed: handle a code, let the rest through.
  const fallback = yield* Llm.generate({ prompt: "hi", model: "no-such-model" }).pipe(
    Effect.catchIf((e) => e.code === "MODEL_UNAVAILABLE", (e) => Effect.succeed(`(${e.code}, ${e.kind}: ${e.message})`)),
    Effect.map((r) => (typeof r === "string" ? r : r.text))
  )
  console.log(`unknown model → ${fallback}`)
})

const main = async () => {
  const external = process.env["AIOS_URL"]
  const kernel = external === undefined ? await startReferenceKernel() : undefined
  const baseUrl = external ?? kernel?.url ?? ""
  try {
    // `Aios.layerNode` brings Node's HTTP client; `Aios.layer` takes the caller's `HttpClient` instead.
    const stack = Llm.layer.pipe(
      Layer.provide(Aios.layerNode({ baseUrl, aliases: { fast: process.env["AIOS_MODEL"] ?? "echo" } }))
    )
    await Effect.runPromise(Effect.provide(program, stack))
  } finally {
    await kernel?.close()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
