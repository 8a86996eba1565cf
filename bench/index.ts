/**
 * `npm run bench`: every benchmark, each a ratio against a baseline measured in the same run. Each suite runs in
 * a fresh Node process (same loader flags): a suite that leaves a large heap would otherwise tax the next one's
 * allocation-heavy side more than its baseline.
 *
 * ToolTags runs three times, each in its own process, and each row reports the run with the median ratio and the
 * range of all three: its per-character loops land in different JIT states from one process to the next (four
 * runs of the suite measured the dense-tags row at 2.8×, 3.0×, 5.9× and 6.7×), which a median within one process
 * cannot see.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { printTable, type BenchRow } from "./util.js"

const suites: ReadonlyArray<readonly [name: string, file: string, runs: number]> = [
  ["Backend", "backend.ts", 1],
  ["ToolTags", "toolTags.ts", 1],
  ["OpenClaw adapter", "adapter.ts", 1],
  ["time to first token", "ttft.ts", 1]
]

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
const rows: Array<BenchRow> = []
const runSuite = async (file: string): Promise<Array<BenchRow>> => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...process.execArgv, here("runSuite.ts"), here(file)],
    { timeout: 900_000, maxBuffer: 16 * 1024 * 1024 }
  )
  return JSON.parse(stdout.trim().split("\n").pop() ?? "[]") as Array<BenchRow>
}

for (const [name, file, runs] of suites) {
  process.stdout.write(`running ${name}${runs > 1 ? ` (${runs} runs)` : ""}…\n`)
  const results: Array<Array<BenchRow>> = []
  for (let i = 0; i < runs; i++) results.push(await runSuite(file))
  // Row by row: the run with the median ratio, and the range over all runs.
  for (let i = 0; i < results[0]!.length; i++) {
    const all = results.map((r) => r[i]!).sort((a, b) => a.ratio - b.ratio)
    const median = all[Math.floor(all.length / 2)]!
    rows.push(
      runs === 1
        ? median
        : { ...median, detail: `${median.detail}; ${runs} runs: ${all.map((r) => r.ratio.toFixed(2)).join(", ")}` }
    )
  }
}
printTable(rows)
