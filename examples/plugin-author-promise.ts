/**
 * A plugin author's LLM calls without Effect: `LlmPromise.createLlm(config)` gives Promises, an `AsyncIterable`
 * for streaming, `AbortSignal` cancellation and `Llm.LlmError` codes. The library prints nothing; pass
 * `{ logger: console }` (or your host's logger) to see its retries. Uses the kernel at `AIOS_URL`, or starts a
 * reference kernel on 127.0.0.1.
 *
 *   npm run example:promise
 */
import { Llm, LlmPromise } from "../src/index.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"

const main = async () => {
  const external = process.env["AIOS_URL"]
  const kernel = external === undefined ? await startReferenceKernel() : undefined
  const llm = LlmPromise.createLlm({
    baseUrl: external ?? kernel?.url ?? "",
    defaultModel: "haiku",
    aliases: { haiku: process.env["AIOS_MODEL"] ?? "echo" },
    limits: { concurrency: 2 }
  })
  try {
    const result = await llm.generate({ prompt: "Say hello in one word: hello", system: "Be terse." })
    console.log(`generate → ${JSON.stringify(result.text)} (model ${result.model}, ${result.usage.totalTokens} tokens` +
      `${result.usage.estimated ? " estimated" : ""}, ${result.latencyMs.toFixed(1)} ms)`)

    let streamed = ""
    for await (const piece of llm.stream({ prompt: "Summarise: streaming works. The rest is cut.", stopSequences: [". "] })) {
      streamed += piece
    }
    console.log(`stream → ${JSON.stringify(streamed)}`)

    const controller = new AbortController()
    controller.abort()
    await llm.generate({ prompt: "never sent", signal: controller.signal }).catch((e: unknown) => {
      console.log(`aborted → ${e instanceof Error ? e.name : String(e)}`)
    })

    await llm.generate({ prompt: "x", model: "no-such-model" }).catch((e: unknown) => {
      if (!(e instanceof Llm.LlmError)) throw e
      console.log(`unknown model → ${e.code} (retryable: ${e.retryable})`)
    })
  } finally {
    await llm.close()
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
