/** One line of the benchmark report. */
export interface BenchRow {
  readonly name: string
  /** The measured ratio (what `target` is about). */
  readonly ratio: number
  /** e.g. "≤ 1.15× fetch"; "" for a row that only informs. */
  readonly target: string
  /** Absent for a row that only informs. */
  readonly pass?: boolean
  /** The raw figures behind the ratio. */
  readonly detail: string
}

/** The p-th percentile (0–100) of `samples`. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
}

/** Times `n` sequential runs of `f`, in milliseconds each. */
export const sample = async (n: number, f: () => Promise<unknown>): Promise<Array<number>> => {
  const out: Array<number> = []
  for (let i = 0; i < n; i++) {
    const start = performance.now()
    await f()
    out.push(performance.now() - start)
  }
  return out
}

export const printTable = (rows: ReadonlyArray<BenchRow>): void => {
  const w = Math.max(...rows.map((r) => r.name.length), 10)
  console.log(`\n${"benchmark".padEnd(w)}  ${"ratio".padStart(8)}  ${"target".padEnd(22)}  ok   detail`)
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(w)}  ${r.ratio.toFixed(3).padStart(7)}×  ${r.target.padEnd(22)}  ${r.pass === undefined ? " — " : r.pass ? "yes" : "NO "}  ${r.detail}`
    )
  }
}
