/**
 * Runs one benchmark module (`bench/<name>.ts`) and prints its rows as JSON on the last line. `bench/index.ts`
 * starts one process per module, so no suite runs on a heap, or a JIT, shaped by another.
 */
import { pathToFileURL } from "node:url"
import type { BenchRow } from "./util.js"

const file = process.argv[2]
if (file === undefined) throw new Error("usage: runSuite <bench module file>")
const suite = (await import(pathToFileURL(file).href)) as { run: () => Promise<ReadonlyArray<BenchRow>> }
process.stdout.write(`\n${JSON.stringify(await suite.run())}\n`)
