/**
 * `npm run bench`: every benchmark, each a ratio against a baseline measured in the same run.
 */
import { printTable, type BenchRow } from "./util.js"

const suites: ReadonlyArray<[string, () => Promise<{ run: () => Promise<ReadonlyArray<BenchRow>> }>]> = [
  ["KernelClient", () => import("./kernelClient.js")],
  ["ToolTags", () => import("./toolTags.js")],
  ["OpenClaw adapter", () => import("./adapter.js")],
  ["time to first token", () => import("./ttft.js")]
]

const rows: Array<BenchRow> = []
for (const [name, load] of suites) {
  process.stdout.write(`running ${name}…\n`)
  rows.push(...(await (await load()).run()))
}
printTable(rows)
