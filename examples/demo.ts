/**
 * `npm start`: a short agent loop through the OpenClaw adapter, the way OpenClaw drives the plugin.
 *
 * 1. Finds a kernel: `AIOS_URL` (default http://localhost:8000) if it answers `/status`, else the ReferenceKernel
 *    on a free port.
 * 2. Asks a question that needs a tool (`read`), through `makeAiosProvider(...).createStreamFn`.
 * 3. Runs the tool here, appends the assistant message and the tool result, and calls again for the answer.
 * Every stream event is printed as it arrives.
 */
import type { AssistantMessage, AssistantMessageEvent, Context, Model, Tool, ToolCall, ToolResultMessage } from "@openclaw/ai"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { makeAiosProvider } from "../src/openclaw/index.js"
import { type Handle, startReferenceKernel } from "../src/testing/ReferenceKernel.js"

const MAX_TURNS = 4

/** Whether an AIOS kernel answers at `url`. */
const answers = async (url: string): Promise<boolean> => {
  try {
    const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(1500) })
    return response.ok
  } catch {
    return false
  }
}

const preview = (s: string, max = 60): string => {
  const json = JSON.stringify(s)
  return json.length > max ? `${json.slice(0, max - 4)}..."` : json
}

/** One compact line per stream event. */
const describe = (e: AssistantMessageEvent): string => {
  switch (e.type) {
    case "text_delta":
    case "thinking_delta":
    case "toolcall_delta":
      return `${e.type} ${preview(e.delta)}`
    case "text_end":
      return `text_end (${e.content.length} chars)`
    case "toolcall_end":
      return `toolcall_end ${e.toolCall.name} ${JSON.stringify(e.toolCall.arguments)}`
    case "done":
      return `done reason=${e.reason} tokens in/out=${e.message.usage.input}/${e.message.usage.output}`
    case "error":
      return `error ${e.error.errorMessage ?? ""}`
    default:
      return e.type
  }
}

/** The one tool of the demo, run locally: reads a file inside the workspace. */
const runTool = async (workspace: string, call: ToolCall): Promise<ToolResultMessage> => {
  const result = (text: string, isError: boolean): ToolResultMessage => ({
    role: "toolResult",
    toolCallId: call.id,
    toolName: call.name,
    content: [{ type: "text", text }],
    isError,
    timestamp: Date.now()
  })
  const requested = call.arguments["path"]
  if (call.name !== "read" || typeof requested !== "string") return result(`unknown tool call ${call.name}`, true)
  const file = Path.resolve(workspace, requested)
  if (!file.startsWith(workspace + Path.sep)) return result(`${requested} is outside the workspace`, true)
  try {
    return result(await readFile(file, "utf8"), false)
  } catch (e) {
    return result(`cannot read ${requested}: ${e instanceof Error ? e.message : String(e)}`, true)
  }
}

const main = async (): Promise<number> => {
  const configured = (process.env["AIOS_URL"] ?? "http://localhost:8000").replace(/\/+$/, "")
  let kernel: Handle | undefined
  let url = configured
  if (await answers(configured)) {
    console.log(`kernel: ${configured} answers /status`)
  } else {
    kernel = await startReferenceKernel({ port: 0 })
    url = kernel.url
    console.log(`kernel: nothing answers at ${configured}; started the ReferenceKernel at ${url}`)
  }

  const provider = makeAiosProvider({ baseUrl: url, retry: { maxRetries: 1, delayMs: 1000 } })
  const workspace = await mkdtemp(Path.join(tmpdir(), "effect-aios-demo-"))
  try {
    const catalog = await provider.catalog.run({})
    const ids = catalog?.provider.models.map((m) => m.id) ?? []
    if (ids.length === 0) {
      console.error(`The kernel at ${url} lists no models (see the warning above); configure one and retry.`)
      return 1
    }
    const modelId = ids.includes("tool-user") ? "tool-user" : process.env["AIOS_DEFAULT_MODEL"] ?? ids[0]!
    console.log(`models: ${ids.join(", ")}; using aios/${modelId}`)
    await provider.prepareDynamicModel({ provider: "aios", modelId })
    const model = provider.resolveDynamicModel({ provider: "aios", modelId }) as Model | undefined
    if (model === undefined) {
      console.error(`The kernel at ${url} does not serve ${modelId}.`)
      return 1
    }

    await writeFile(Path.join(workspace, "notes.txt"), "The launch code is 4217. Water the plants on Friday.\n")
    console.log(`workspace: ${workspace} (notes.txt)`)

    const question = "Use read to open notes.txt and tell me what it says"
    const context: Context = {
      systemPrompt: "You are a helpful assistant. Use the tools you are given to answer.",
      messages: [{ role: "user", content: question, timestamp: Date.now() }],
      tools: [{
        name: "read",
        description: "Read a text file in the workspace",
        // OpenClaw hands tools over with plain JSON Schema parameters; the type is TypeBox's.
        parameters: { type: "object", required: ["path"], properties: { path: { type: "string" } } } as unknown as Tool["parameters"]
      }]
    }
    console.log(`\nuser> ${question}`)

    const streamFn = provider.createStreamFn({ provider: "aios", modelId })
    for (let turn = 1; turn <= MAX_TURNS; turn++) {
      console.log(`\n-- turn ${turn}: ${context.messages.length} message(s), ${context.tools?.length ?? 0} tool(s)`)
      const stream = await streamFn(model, context, {})
      for await (const event of stream) console.log(`   ${describe(event)}`)
      const message: AssistantMessage = await stream.result()
      if (message.stopReason === "error" || message.stopReason === "aborted") {
        console.error(`The turn failed: ${message.errorMessage ?? message.stopReason}`)
        return 1
      }
      context.messages.push(message)
      const calls = message.content.filter((c): c is ToolCall => c.type === "toolCall")
      if (calls.length === 0) {
        const answer = message.content.flatMap((c) => (c.type === "text" ? [c.text] : [])).join("")
        console.log(`\nanswer> ${answer}`)
        return 0
      }
      for (const call of calls) {
        const result = await runTool(workspace, call)
        const text = result.content.map((c) => (c.type === "text" ? c.text : "")).join("")
        console.log(`   tool ${call.name} ${JSON.stringify(call.arguments)} -> ${result.isError ? "error " : ""}${preview(text)}`)
        context.messages.push(result)
      }
    }
    console.error(`No final answer after ${MAX_TURNS} turns.`)
    return 1
  } finally {
    await provider.dispose()
    await kernel?.close()
    await rm(workspace, { recursive: true, force: true })
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  }
)
