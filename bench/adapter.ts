/**
 * The OpenClaw adapter, as ratios against baselines measured in the same run:
 *
 * - one `createStreamFn` turn (every event consumed, then `result()`) against one raw `fetch` POST `/query` of
 *   the exact body the adapter sends (captured from the reference kernel after a warm-up turn), p50. Twice: an
 *   OpenClaw-like context (~40k-character system prompt, 12 tools with JSON Schemas, one user message) and a
 *   trivial one (one short message, no tools), which shows the fixed overhead. Kernel latency 0: the worst case
 *   for the ratio. Target ≤ 1.3×.
 * - 1,000 concurrent turns (trivial context) with 50 ms kernel latency, in a child process of their own: wall
 *   time against one turn's, next to the same ratio for raw fetch (the target: within 1.15× of it); the heap
 *   after each burst (must not grow: a leak check) with RSS before / after; handles left after disposing the
 *   provider (kernel still open: only its listener may remain) and after closing the kernel (none); and
 *   `/core/llms/list` requests per 1,000 turns (warm bursts, and a burst on a provider that never listed).
 *
 * The reference kernel runs in this process, so its own work (parsing a 40k body, answering) is inside both
 * sides of every ratio, as a real kernel's latency would be. Run alone: `npx tsx bench/adapter.ts`.
 */
import type { AssistantMessage, Context, Model, StreamFn } from "@openclaw/ai"
import { execFile } from "node:child_process"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath, pathToFileURL } from "node:url"
import { promisify } from "node:util"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { type AiosProviderPlugin, makeAiosProvider } from "../src/openclaw/provider.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { percentile, sample, type BenchRow } from "./util.js"

// ---------------------------------------------------------------------------------------------------------------
// Contexts
// ---------------------------------------------------------------------------------------------------------------

/** A deterministic pseudo-random source, so every run sends the same prompt. */
const lcg = (seed: number) => () => {
  seed = (seed * 1664525 + 1013904223) >>> 0
  return seed / 2 ** 32
}

const VOCAB = [
  "the", "agent", "workspace", "file", "tool", "call", "user", "reply", "session", "memory", "skill", "channel",
  "always", "never", "before", "after", "when", "read", "write", "edit", "run", "check", "confirm", "result",
  "output", "command", "path", "message", "context", "model", "prefer", "avoid", "short", "clear", "safe",
  "project", "task", "step", "plan", "review", "test", "error", "retry", "log", "config", "heartbeat", "cron"
]

/**
 * An OpenClaw-like system prompt of about `size` characters: headed sections of guidance, bullet lists,
 * injected workspace files and a skills list (markdown, no `<` so the tag renderer has nothing to escape).
 */
export const systemPrompt = (size = 40_000): string => {
  const rand = lcg(7)
  const sentence = () => {
    const n = 8 + Math.floor(rand() * 14)
    const words = Array.from({ length: n }, () => VOCAB[Math.floor(rand() * VOCAB.length)]!)
    const s = words.join(" ")
    return `${s[0]!.toUpperCase()}${s.slice(1)}.`
  }
  const sections = [
    "## Identity", "## Tooling", "## Safety", "## Workspace", "## AGENTS.md", "## SOUL.md", "## USER.md",
    "## TOOLS.md", "## MEMORY.md", "## Skills", "## Messaging", "## Heartbeats", "## Runtime"
  ]
  const out: Array<string> = ["You are a personal assistant running inside OpenClaw."]
  let len = out[0]!.length
  for (let i = 0; len < size; i++) {
    const piece = i % 9 === 0
      ? `\n\n${sections[(i / 9) % sections.length]}\n`
      : i % 4 === 0
      ? `\n- ${sentence()} Use \`${VOCAB[i % VOCAB.length]}\` for this.`
      : ` ${sentence()}`
    out.push(piece)
    len += piece.length
  }
  return out.join("").slice(0, size)
}

const str = (description: string) => ({ type: "string", description })
const int = (description: string) => ({ type: "integer", description })

/** Twelve tools shaped like OpenClaw's own, with JSON Schemas. */
export const tools = [
  {
    name: "read",
    description: "Read the contents of a file. Supports text files and images; large files are read in pages.",
    parameters: {
      type: "object",
      required: ["path"],
      properties: { path: str("Path to the file, relative to the workspace"), offset: int("Line to start at"), limit: int("Lines to read") }
    }
  },
  {
    name: "write",
    description: "Write content to a file, creating it and its parent directories if needed. Overwrites.",
    parameters: { type: "object", required: ["path", "content"], properties: { path: str("Path to the file"), content: str("The full content") } }
  },
  {
    name: "edit",
    description: "Replace exact text in a file. The old text must match exactly, including whitespace.",
    parameters: {
      type: "object",
      required: ["path", "oldText", "newText"],
      properties: { path: str("Path to the file"), oldText: str("Exact text to find"), newText: str("Replacement text") }
    }
  },
  {
    name: "exec",
    description: "Run a shell command in the workspace. Long-running commands continue in the background.",
    parameters: {
      type: "object",
      required: ["command"],
      properties: {
        command: str("The shell command"),
        workdir: str("Working directory"),
        timeout: int("Seconds before the command is stopped"),
        background: { type: "boolean", description: "Run in the background at once" },
        env: { type: "object", additionalProperties: { type: "string" }, description: "Extra environment variables" }
      }
    }
  },
  {
    name: "process",
    description: "Manage background exec sessions: list, poll, log, write, kill.",
    parameters: {
      type: "object",
      required: ["action"],
      properties: {
        action: { type: "string", enum: ["list", "poll", "log", "write", "kill", "clear"] },
        sessionId: str("The session to act on"),
        data: str("Input to write"),
        offset: int("Log offset"),
        limit: int("Log lines")
      }
    }
  },
  {
    name: "web_search",
    description: "Search the web. Returns titles, URLs and snippets.",
    parameters: {
      type: "object",
      required: ["query"],
      properties: {
        query: str("Search query"),
        count: { type: "integer", minimum: 1, maximum: 10, description: "Number of results" },
        country: str("Two-letter country code"),
        freshness: { type: "string", enum: ["pd", "pw", "pm", "py"] }
      }
    }
  },
  {
    name: "web_fetch",
    description: "Fetch a URL and extract readable content as markdown or text.",
    parameters: {
      type: "object",
      required: ["url"],
      properties: {
        url: { type: "string", format: "uri" },
        extractMode: { type: "string", enum: ["markdown", "text"] },
        maxChars: { type: "integer", minimum: 100 }
      }
    }
  },
  {
    name: "browser",
    description: "Control the browser: status, start, stop, tabs, open, snapshot, screenshot, navigate, act.",
    parameters: {
      type: "object",
      required: ["action"],
      properties: {
        action: { type: "string", enum: ["status", "start", "stop", "tabs", "open", "snapshot", "screenshot", "navigate", "act"] },
        targetUrl: str("URL to open or navigate to"),
        request: {
          type: "object",
          properties: {
            kind: { type: "string", enum: ["click", "type", "press", "hover", "select", "fill", "wait"] },
            ref: str("Element reference from a snapshot"),
            text: str("Text to type")
          }
        }
      }
    }
  },
  {
    name: "message",
    description: "Send, react to, edit or delete messages on the connected channels.",
    parameters: {
      type: "object",
      required: ["action"],
      properties: {
        action: { type: "string", enum: ["send", "react", "edit", "delete", "read", "search"] },
        channel: str("Channel id"),
        to: str("Recipient"),
        message: str("Text"),
        replyTo: str("Message id to reply to"),
        media: { type: "array", items: { type: "string" }, description: "Paths or URLs of attachments" }
      }
    }
  },
  {
    name: "cron",
    description: "Manage scheduled jobs and wake events.",
    parameters: {
      type: "object",
      required: ["action"],
      properties: {
        action: { type: "string", enum: ["status", "list", "add", "update", "remove", "run", "wake"] },
        job: {
          type: "object",
          properties: { name: str("Job name"), schedule: str("Cron expression or interval"), text: str("What to do") }
        },
        jobId: str("Job id")
      }
    }
  },
  {
    name: "sessions_send",
    description: "Send a message to another session and optionally wait for its reply.",
    parameters: {
      type: "object",
      required: ["message"],
      properties: { sessionKey: str("Target session"), label: str("Session label"), message: str("Text"), timeoutSeconds: int("Wait") }
    }
  },
  {
    name: "memory_search",
    description: "Search MEMORY.md and memory/*.md semantically; returns snippets with paths and lines.",
    parameters: {
      type: "object",
      required: ["query"],
      properties: { query: str("What to look for"), maxResults: int("Most snippets"), minScore: { type: "number", minimum: 0, maximum: 1 } }
    }
  }
]

/** The one user message of both contexts; the reference `echo` model replies with it. */
export const USER_TEXT = "Summarise the failing tests and propose a fix for the flaky retry test."

/** An OpenClaw-like turn: ~40k-character system prompt, 12 tools, one user message. */
export const realisticContext = (text = USER_TEXT): Context => ({
  systemPrompt: systemPrompt(),
  messages: [{ role: "user", content: text, timestamp: 0 }],
  // OpenClaw types tool parameters as TypeBox schemas; at run time they are plain JSON Schemas, as here.
  tools: tools as unknown as NonNullable<Context["tools"]>
})

/** One short message, no system prompt, no tools. */
export const trivialContext = (text = "hello"): Context => ({ messages: [{ role: "user", content: text, timestamp: 0 }] })

// ---------------------------------------------------------------------------------------------------------------
// Helpers shared with bench/ttft.ts
// ---------------------------------------------------------------------------------------------------------------

/** A host logger that keeps messages instead of writing them (stdout is the table's). */
export const quietLogger = () => {
  const lines: Array<string> = []
  const keep = (m: string) => void lines.push(m)
  return { logger: { info: keep, warn: keep, error: keep }, lines }
}

/** The provider's stream function and model for `modelId`, as OpenClaw would obtain them. */
export const streamFnFor = (provider: AiosProviderPlugin, modelId: string): { fn: StreamFn; model: Model } => ({
  fn: provider.createStreamFn({ provider: "aios", modelId }),
  model: provider.resolveDynamicModel({ provider: "aios", modelId }) as unknown as Model
})

/** One turn through the adapter, every event consumed; an `error` event fails it (never time a failure). */
export const adapterTurn = async (fn: StreamFn, model: Model, context: Context): Promise<AssistantMessage> => {
  const stream = await fn(model, context, {})
  for await (const event of stream) {
    if (event.type === "error") throw new Error(`adapter turn failed: ${event.error.errorMessage ?? event.reason}`)
  }
  return stream.result()
}

/** The text of a finished assistant message. */
export const textOf = (message: AssistantMessage): string =>
  message.content.map((c) => (c.type === "text" ? c.text : "")).join("")

let gcFunction: (() => void) | undefined
/** `global.gc` when run with `--expose-gc` (the concurrency child is), else the same function enabled now. */
export const gc = (): void => {
  gcFunction ??= (globalThis as { gc?: () => void }).gc ?? (() => {
    v8.setFlagsFromString("--expose-gc")
    return vm.runInNewContext("gc") as () => void
  })()
  gcFunction()
}

const settle = async () => {
  // Let socket close events and finalizers run, then collect twice (weak refs, finalization registries).
  await sleep(200)
  gc()
  await sleep(20)
  gc()
}

const execFileAsync = promisify(execFile)
const MB = 1024 * 1024
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`
const ms = (x: number) => `${x.toFixed(3)} ms`

/** Resource names in `after` beyond those in `before` (a multiset difference). */
export const leftover = (before: ReadonlyArray<string>, after: ReadonlyArray<string>): Array<string> => {
  const counts = new Map<string, number>()
  for (const r of before) counts.set(r, (counts.get(r) ?? 0) + 1)
  const out: Array<string> = []
  for (const r of after) {
    const n = counts.get(r) ?? 0
    if (n > 0) counts.set(r, n - 1)
    else out.push(r)
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Turn vs raw fetch
// ---------------------------------------------------------------------------------------------------------------

interface QueryEnvelope {
  readonly response: { readonly response_message: string | null; readonly status_code: number; readonly error: string | null }
}

const turnVsFetch = async (label: string, context: Context, n: number, latencyMs = 0): Promise<BenchRow> => {
  const kernel = await startReferenceKernel({ latencyMs })
  const { logger } = quietLogger()
  const provider = makeAiosProvider({ baseUrl: kernel.url, retry: { maxRetries: 0 } }, { logger })
  try {
    const { fn, model } = streamFnFor(provider, "echo")
    const first = await adapterTurn(fn, model, context)
    const sent = kernel.requests("/query")
    const body = sent[sent.length - 1]?.body
    if (body === undefined) throw new Error("no /query request was recorded")
    const bodyChars = JSON.stringify(body).length
    const expected = textOf(first)
    const raw = async () => {
      const res = await fetch(`${kernel.url}/query`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body)
      })
      const json = (await res.json()) as QueryEnvelope
      if (json.response.status_code !== 200) throw new Error(`raw /query failed: ${json.response.error}`)
      return json.response.response_message
    }
    if ((await raw()) !== expected) throw new Error("the raw request got a different reply than the adapter")
    const viaAdapter = () => adapterTurn(fn, model, context)
    // Warm both paths (JIT, keep-alive sockets), then interleave rounds so drift hits both alike. The kernel
    // records every body; forget them between rounds so the heap does not grow with the samples.
    await sample(Math.min(100, n / 2), raw)
    await sample(Math.min(100, n / 2), viaAdapter)
    kernel.reset()
    const rawTimes: Array<number> = []
    const adapterTimes: Array<number> = []
    const rounds = 8
    for (let round = 0; round < rounds; round++) {
      rawTimes.push(...(await sample(n / rounds, raw)))
      adapterTimes.push(...(await sample(n / rounds, viaAdapter)))
      kernel.reset()
    }
    const rawP50 = percentile(rawTimes, 50)
    const adapterP50 = percentile(adapterTimes, 50)
    const ratio = adapterP50 / rawP50
    return {
      name: `createStreamFn turn vs raw fetch /query, ${label}, ${latencyMs} ms latency (p50)`,
      ratio,
      target: "≤ 1.3× fetch",
      pass: ratio <= 1.3,
      detail: `turn p50 ${ms(adapterP50)} (p90 ${ms(percentile(adapterTimes, 90))}), fetch p50 ${ms(rawP50)} ` +
        `(p90 ${ms(percentile(rawTimes, 90))}), +${ms(adapterP50 - rawP50)}/turn; body ${bodyChars} chars; ` +
        `kernel latency ${latencyMs} ms; n=${n}`
    }
  } finally {
    await provider.dispose()
    await kernel.close()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 1,000 concurrent turns
// ---------------------------------------------------------------------------------------------------------------

const TURNS = 1000
const LATENCY_MS = 50

const burst = async (f: () => Promise<unknown>, count: number): Promise<number> => {
  const start = performance.now()
  await Promise.all(Array.from({ length: count }, f))
  return performance.now() - start
}

const concurrent = async (context: Context): Promise<Array<BenchRow>> => {
  await settle()
  const handlesBefore = process.getActiveResourcesInfo()
  const memBefore = process.memoryUsage()
  let rssPeak = memBefore.rss
  let heapPeak = memBefore.heapUsed
  const peaks = setInterval(() => {
    const m = process.memoryUsage()
    rssPeak = Math.max(rssPeak, m.rss)
    heapPeak = Math.max(heapPeak, m.heapUsed)
  }, 10)

  const kernel = await startReferenceKernel({ latencyMs: LATENCY_MS })
  const { logger, lines } = quietLogger()
  const options = { baseUrl: kernel.url, retry: { maxRetries: 0 } }
  const warm = makeAiosProvider(options, { logger })
  const cold = makeAiosProvider(options, { logger })
  const rows: Array<BenchRow> = []
  const mems: Array<NodeJS.MemoryUsage> = []
  let handlesDisposed: Array<string> = []
  try {
    // One turn: warm-up, then the p50 of sequential turns.
    const w = streamFnFor(warm, "echo")
    const one = () => adapterTurn(w.fn, w.model, context)
    await sample(5, one)
    const oneP50 = percentile(await sample(20, one), 50)
    const warmTurns = 25
    const warmLists = kernel.count("/core/llms/list")
    const sent = kernel.requests("/query")
    const body = JSON.stringify(sent[sent.length - 1]?.body)
    kernel.reset()

    // The baseline: the same body by raw fetch (the server and HTTP in this process), on a kernel of its own that
    // is closed before the adapter's bursts, so that fetch's keep-alive sockets are gone when handles are counted.
    // Each kind's bursts run back to back, every one from a collected heap: both HTTP clients drop idle sockets
    // after 4 s, and a burst on an empty pool opens 1,000 connections (the first burst of each, reported apart).
    const rawKernel = await startReferenceKernel({ latencyMs: LATENCY_MS })
    const raw = async () => {
      const res = await fetch(`${rawKernel.url}/query`, { method: "POST", headers: { "content-type": "application/json" }, body })
      return (await res.json()) as QueryEnvelope
    }
    const BURSTS = 4
    const rawWalls: Array<number> = []
    let rawOneP50 = Number.NaN
    let rawFirst = Number.NaN
    try {
      await sample(5, raw)
      rawOneP50 = percentile(await sample(20, raw), 50)
      for (let i = 0; i <= BURSTS; i++) {
        await settle()
        const t = await burst(raw, TURNS)
        if (i === 0) rawFirst = t
        else rawWalls.push(t)
        rawKernel.reset()
      }
    } finally {
      await rawKernel.close()
    }
    await settle()
    const memAfterRaw = process.memoryUsage()

    const walls: Array<number> = []
    let adapterFirst = Number.NaN
    let maxInFlight = 0
    let burstLists = 0
    for (let i = 0; i <= BURSTS; i++) {
      await settle()
      const t = await burst(one, TURNS)
      if (i === 0) adapterFirst = t
      else walls.push(t)
      maxInFlight = Math.max(maxInFlight, kernel.maxConcurrentQueries())
      burstLists += kernel.count("/core/llms/list")
      kernel.reset()
      await settle()
      mems.push(process.memoryUsage())
    }
    const wall = percentile(walls, 50)
    const rawWall = percentile(rawWalls, 50)

    // A burst on a provider that has never listed models: the catalog must still ask once.
    const c = streamFnFor(cold, "echo")
    await settle()
    const coldWall = await burst(() => adapterTurn(c.fn, c.model, context), TURNS)
    const coldLists = kernel.count("/core/llms/list")
    kernel.reset()

    const ratio = wall / oneP50
    const rawRatio = rawWall / rawOneP50
    rows.push({
      name: `${TURNS} concurrent turns, ${LATENCY_MS} ms latency: wall vs one turn`,
      ratio,
      target: "≤ 1.15× raw fetch's",
      pass: ratio <= 1.15 * rawRatio,
      detail: `burst ${ms(wall)} (median of ${BURSTS}; first, new connections ${ms(adapterFirst)}; cold provider ` +
        `${ms(coldWall)}), one turn ${ms(oneP50)}; raw fetch: burst ${ms(rawWall)} (first ${ms(rawFirst)}), one ` +
        `${ms(rawOneP50)} = ${rawRatio.toFixed(2)}×; ` +
        `at most ${maxInFlight} queries in flight at the kernel`
    })
    const lists = warmLists + burstLists
    const turns = warmTurns + TURNS * (BURSTS + 1)
    const perThousand = (lists / turns) * 1000
    rows.push({
      name: "/core/llms/list requests per 1,000 turns",
      ratio: perThousand,
      target: "≤ 1 (60 s TTL)",
      pass: perThousand <= 1 && coldLists <= 1,
      detail: `${lists} for ${turns} turns (${warmLists} in the ${warmTurns} sequential, ${burstLists} in ${BURSTS + 1} bursts of ` +
        `${TURNS}); ${coldLists} for ${TURNS} concurrent turns on a cold provider`
    })
    if (lines.length > 0) {
      rows.push({ name: "adapter log lines during the bursts", ratio: lines.length, target: "0", pass: false, detail: lines[0] ?? "" })
    }

    // RSS is a high-water mark (the biggest burst sets it, and the allocator keeps it), so the leak check is
    // the heap still in use after a gc: it must not grow from burst to burst. RSS figures are in the detail.
    const first = mems[0]!
    const last = mems[mems.length - 1]!
    const steady = last.heapUsed / first.heapUsed
    rows.push({
      name: `memory after ${TURNS}-turn bursts: heap after last vs first burst, RSS growth`,
      ratio: steady,
      target: "≤ 1.05 (no growth)",
      pass: steady <= 1.05,
      detail: `RSS ${mb(memBefore.rss)} before, ${mb(memAfterRaw.rss)} after the raw-fetch bursts, ` +
        `${mems.map((m) => mb(m.rss)).join(" → ")} after each adapter burst (peak ${mb(rssPeak)}): growth ` +
        `${mb(last.rss - memBefore.rss)}, ${mb(last.rss - memAfterRaw.rss)} of it in the adapter's; heap used ` +
        `${mb(memBefore.heapUsed)} → ${mb(memAfterRaw.heapUsed)} → ${mems.map((m) => mb(m.heapUsed)).join(" → ")} ` +
        `(peak during bursts ${mb(heapPeak)})`
    })
  } finally {
    clearInterval(peaks)
    await warm.dispose()
    await cold.dispose()
    // With the kernel still listening: what the providers left is theirs (sockets, timers), not the kernel's.
    await settle()
    handlesDisposed = process.getActiveResourcesInfo()
    await kernel.close()
  }

  await settle()
  const handlesAfter = process.getActiveResourcesInfo()
  const left = leftover(handlesBefore, handlesAfter)
  const gone = leftover(handlesAfter, handlesBefore)
  // Only the kernel's listening socket may remain once the providers are disposed.
  const leftByProviders = leftover(handlesBefore, handlesDisposed).filter((r, i, all) => r !== "TCPServerWrap" || all.indexOf(r) !== i)
  rows.push({
    name: "handles left after provider dispose + kernel close",
    ratio: left.length,
    target: "0 left",
    pass: left.length === 0 && leftByProviders.length === 0,
    detail: `${handlesBefore.length} before (${[...new Set(handlesBefore)].join(", ")}), ${handlesAfter.length} after` +
      (left.length > 0 ? `; left: ${left.join(", ")}` : "") +
      (gone.length > 0 ? `; gone since before: ${gone.join(", ")}` : "") +
      `; after dispose with the kernel still open: ${leftover(handlesBefore, handlesDisposed).join(", ") || "nothing"} extra`
  })
  return rows
}

/**
 * The concurrency rows run in a fresh Node process (this file with `--concurrent`, the same loader flags plus
 * `--expose-gc`): RSS is a high-water mark and the handle list is process-wide, so earlier benchmarks in this
 * process would otherwise set both baselines. It prints its rows as JSON on the last line.
 */
const concurrentInChild = async (): Promise<Array<BenchRow>> => {
  const { stdout } = await execFileAsync(
    process.execPath,
    [...process.execArgv, "--expose-gc", fileURLToPath(import.meta.url), "--concurrent"],
    { timeout: 300_000, maxBuffer: 1024 * 1024 }
  )
  const last = stdout.trim().split("\n").pop() ?? "[]"
  return JSON.parse(last) as Array<BenchRow>
}

export const run = async (): Promise<Array<BenchRow>> => [
  await turnVsFetch("OpenClaw-like context", realisticContext(), 400),
  await turnVsFetch("trivial context", trivialContext(), 400),
  // The real kernel's scheduler adds 0–1 s per call; even 5 ms shows what the fixed overhead means in practice.
  await turnVsFetch("OpenClaw-like context", realisticContext(), 200, 5),
  ...(await concurrentInChild())
]

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain && process.argv.includes("--concurrent")) {
  process.stdout.write(`${JSON.stringify(await concurrent(trivialContext()))}\n`)
} else if (isMain) {
  const { printTable } = await import("./util.js")
  printTable(await run())
}
