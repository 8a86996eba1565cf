(globalThis as any).W5V = process.argv[2]
const { run } = await import("./bench/pool.ts")
const rows = await run()
console.log(process.argv[2], rows[1]!.ratio.toFixed(3), rows[1]!.detail)
