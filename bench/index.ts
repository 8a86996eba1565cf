/**
 * `npm run bench`: every benchmark, each a ratio against a baseline measured in the same run. Each suite runs in
 * a fresh Node process (same loader flags): a suite that leaves a large heap would otherwise tax the next one's
 * allocation-heavy side more than its baseline.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { printTable, type BenchRow } from "./util.js"

const suites: ReadonlyArray<readonly [name: string, file: string]> = [
  ["Backend", "backend.ts"],
  ["ToolTags", "toolTags.ts"],
  ["OpenClaw adapter", "adapter.ts"],
  ["time to first token", "ttft.ts"],
  ["Wire", "wire.ts"],
  ["event-loop stalls", "stall.ts"],
  ["kernel pool", "pool.ts"],
  ["Redis-backed limits", "redis.ts"],
  ["OpenClaw runtime (spawns OpenClaw, ~5 min)", "openclawRuntime.ts"]
]

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
const rows: Array<BenchRow> = []
for (const [name, file] of suites) {
  process.stdout.write(`running ${name}…\n`)
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...process.execArgv, here("runSuite.ts"), here(file)],
    { timeout: 900_000, maxBuffer: 16 * 1024 * 1024 }
  )
  rows.push(...(JSON.parse(stdout.trim().split("\n").pop() ?? "[]") as Array<BenchRow>))
}
printTable(rows)
