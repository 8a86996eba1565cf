/**
 * ToolTags speed, as ratios against baselines measured in the same run:
 *
 * - whole-text `parse` of 1 MB against an `indexOf` scan of the same text (a loop over every `<` that checks
 *   it against the six tag names: the least any tag parser must do). Informs; no target.
 * - streaming the same 1 MB in 16-character chunks (about what a server sends per event) through
 *   `makeStreamParser` against whole-text `parse`. Target: ≤ 3× the time.
 * - linearity: streaming time per character at 1 MB against 128 KB, in 16-character chunks. Target: ≤ 1.5 (no
 *   rescans of held text).
 * - worst shapes (issue 17): whole-text parse time per character of one block just under the 1 MiB cap holding
 *   one `<invoke>` of distinct `<parameter>`s, and of a 1 MiB reply (prose with a call after each KiB) whose
 *   values are all typed through a tool whose JSON Schema is a self-referencing `anyOf` of width 4 (the tool
 *   index built in each parse, as a turn does), against prose of the same size. Target: ≤ 3×. Beside them, 1 MiB
 *   of calls and nothing else typed through that `anyOf` against the same calls typed by a plain schema (calls
 *   cost more per character than prose whatever the schema; the `anyOf` must add nothing). Informs.
 *
 * Texts: prose without tags (but with `<`, `&`, quotes, inline code and fences), and dense tags (a short line
 * of prose, then a block of two calls, over and over).
 * Run: `npx tsx bench/toolTags.ts`.
 */
import { pathToFileURL } from "node:url"
import * as ToolTags from "../src/ToolTags.js"
import type { BenchRow } from "./util.js"

const MB = 1024 * 1024

const tools: ReadonlyArray<ToolTags.ToolDefinition> = [
  {
    name: "read",
    parameters: { type: "object", properties: { path: { type: "string" }, offset: { type: "integer" } } }
  },
  {
    name: "write",
    parameters: { type: "object", properties: { path: { type: "string" }, content: { type: "string" } } }
  }
]

/** A deterministic pseudo-random source, so every run measures the same text. */
const lcg = (seed: number) => () => {
  seed = (seed * 1664525 + 1013904223) >>> 0
  return seed / 2 ** 32
}

const WORDS = [
  "the", "kernel", "model", "returns", "a", "value", "when", "if", "x", "<", "y", "&&", "z", ">", "0",
  "\"quoted\"", "'single'", "a<b", "R&D", "then", "file", "path", "`code`", "<div>", "&amp;", "tag", "of",
  "function", "call", "result", "</p>", "invoke", "param", "and", "or"
]

const prose = (size: number): string => {
  const rand = lcg(1)
  const out: Array<string> = []
  let len = 0
  while (len < size) {
    const r = rand()
    let piece: string
    if (r < 0.01) piece = "\n```ts\nconst a = b < c && d > e\n```\n"
    else if (r < 0.06) piece = ".\n"
    else piece = WORDS[Math.floor(rand() * WORDS.length)]! + " "
    out.push(piece)
    len += piece.length
  }
  return out.join("").slice(0, size)
}

const dense = (size: number): string => {
  const rand = lcg(2)
  const out: Array<string> = []
  let len = 0
  let i = 0
  while (len < size) {
    const n = Math.floor(rand() * 1000)
    const piece = `Step ${i++}: reading.\n<function_calls>\n<invoke name="read">\n` +
      `<parameter name="path">/src/file${n}.ts</parameter>\n<parameter name="offset">${n}</parameter>\n</invoke>\n` +
      `<invoke name="write">\n<parameter name="path">/tmp/out${n}.txt</parameter>\n` +
      `<parameter name="content">\nif (a &lt; b &amp;&amp; c) {\n  return ${n}\n}\n</parameter>\n</invoke>\n` +
      `</function_calls>\n`
    out.push(piece)
    len += piece.length
  }
  return out.join("").slice(0, size)
}

/** One block just under the cap: one invoke of distinct parameters (the shape that must not stall a gateway). */
const distinctParameters = (size: number): string => {
  const head = "<function_calls>\n<invoke name=\"write\">\n"
  const tail = "</invoke>\n</function_calls>"
  const out: Array<string> = [head]
  let len = head.length + tail.length
  for (let i = 0; ; i++) {
    const piece = `<parameter name="p${i}">v${i}</parameter>\n`
    if (len + piece.length > size) break
    out.push(piece)
    len += piece.length
  }
  return out.join("") + tail
}

/** `{ anyOf: [A, A, A, A] }` where A is the schema itself: exponential for a walk bounded by depth only. */
const selfReferencing = (width: number): Record<string, unknown> => {
  const schema: Record<string, unknown> = {}
  schema["anyOf"] = [...Array.from({ length: width }, () => schema), { type: "object" }]
  return schema
}

const anyOfTools: ReadonlyArray<ToolTags.ToolDefinition> = [
  { name: "deep", parameters: { type: "object", properties: { q: selfReferencing(4), n: { anyOf: [selfReferencing(4)] } } } }
]

const deepCall = (i: number): string =>
  `<function_calls>\n<invoke name="deep">\n<parameter name="q">{"k":${i}}</parameter>\n` +
  `<parameter name="n">${i}</parameter>\n</invoke>\n</function_calls>\n`

/** A reply as an agent writes it, every value typed through the `anyOf`: prose with a call after each KiB. */
const anyOfReply = (size: number): string => {
  const text = prose(size)
  const out: Array<string> = []
  for (let at = 0, i = 0; at < size; at += 1024, i++) out.push(text.slice(at, at + 1024), "\n", deepCall(i))
  return out.join("").slice(0, size)
}

/** Nothing but calls: the densest use of the typed parameters. */
const anyOfCalls = (size: number): string => {
  const out: Array<string> = []
  for (let len = 0, i = 0; len < size; i++) {
    const piece = `Call ${i}.\n${deepCall(i)}`
    out.push(piece)
    len += piece.length
  }
  return out.join("").slice(0, size)
}

const TAGS = ["function_calls>", "/function_calls>", "invoke", "/invoke>", "parameter", "/parameter>"]

/** The baseline: visit every `<` with indexOf and classify it with startsWith. */
const scan = (text: string): number => {
  let tags = 0
  for (let i = text.indexOf("<"); i !== -1; i = text.indexOf("<", i + 1)) {
    for (const t of TAGS) {
      if (text.startsWith(t, i + 1)) {
        tags++
        break
      }
    }
  }
  return tags
}

const wholeParse = (text: string): number => {
  const r = ToolTags.parse(text, { tools, idGenerator: ids() })
  return r.parts.length + r.invalid.length
}

/** Streams chunks through a fresh parser, as a consumer would: keeps every event. */
const streamChunks = (chunks: ReadonlyArray<string>): number => {
  const p = ToolTags.makeStreamParser({ tools, idGenerator: ids() })
  let events = 0
  for (const chunk of chunks) events += p.push(chunk).length
  return events + p.end().length
}

/** Flat strings, as a server's chunks are once decoded (`match` alone gives slices of the whole text). */
const chunks16 = (text: string): Array<string> =>
  (text.match(/[^]{1,16}/g) ?? []).map((c) => JSON.parse(JSON.stringify(c)) as string)

const ids = () => {
  let n = 0
  return () => `b${++n}`
}

let sink = 0

/** CPU time of this process in ms: steadier than wall time on a shared machine (others' load is not counted). */
const cpu = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/**
 * Median CPU ms of `a` and of `b`, measured alternately (so drifts in machine load hit both alike), after each
 * has run for 300 ms to warm up the JIT. Each sample repeats its function for about 20 ms.
 */
const race = (a: () => number, b: () => number, samples: number): readonly [number, number] => {
  const reps = (f: () => number, forMs: number) => {
    const t0 = cpu()
    let k = 0
    while (cpu() - t0 < forMs) {
      sink += f()
      k++
    }
    return k
  }
  reps(a, 300)
  reps(b, 300)
  const ka = reps(a, 20)
  const kb = reps(b, 20)
  const ta: Array<number> = []
  const tb: Array<number> = []
  for (let i = 0; i < samples; i++) {
    for (const [f, k, out] of [[a, ka, ta], [b, kb, tb]] as const) {
      const t0 = cpu()
      for (let j = 0; j < k; j++) sink += f()
      out.push((cpu() - t0) / k)
    }
  }
  const median = (xs: Array<number>) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
  return [median(ta), median(tb)]
}

const ms = (x: number) => `${x.toFixed(2)} ms`

export async function run(): Promise<Array<BenchRow>> {
  const out: Array<BenchRow> = []
  const texts = { "prose, no tags": prose(MB), "dense tags": dense(MB) }
  for (const [label, text] of Object.entries(texts)) {
    const [tScan, tParse] = race(() => scan(text), () => wholeParse(text), 15)
    const ratio = tScan / tParse
    out.push({
      name: `parse 1 MB (${label}) vs indexOf scan: speed`,
      ratio,
      target: "",
      detail: `scan ${ms(tScan)}, parse ${ms(tParse)} (CPU, median)`
    })
  }
  for (const [label, text] of Object.entries(texts)) {
    const chunks = chunks16(text)
    const [tParse, tStream] = race(() => wholeParse(text), () => streamChunks(chunks), 7)
    const ratio = tStream / tParse
    out.push({
      name: `16-char-chunk streaming vs whole-text, 1 MB (${label}): time`,
      ratio,
      target: "≤ 3",
      pass: ratio <= 3,
      detail: `whole ${ms(tParse)}, 16-char stream ${ms(tStream)}`
    })
  }
  for (const [label, text] of Object.entries(texts)) {
    const small = text.slice(0, MB / 8)
    const bigChunks = chunks16(text)
    const smallChunks = chunks16(small)
    const [tSmall, tBig] = race(() => streamChunks(smallChunks), () => streamChunks(bigChunks), 7)
    const ratio = (tBig / text.length) / (tSmall / small.length)
    out.push({
      name: `16-char-chunk streaming, time per char at 1 MB vs 128 KB (${label})`,
      ratio,
      target: "≤ 1.5",
      pass: ratio <= 1.5,
      detail: `128 KB ${ms(tSmall)}, 1 MB ${ms(tBig)}`
    })
  }
  const plain = prose(MB)
  const worst = [
    ["1 MiB distinct parameters", distinctParameters(MB), tools],
    ["a reply typed by a self-referencing anyOf of width 4", anyOfReply(MB), anyOfTools]
  ] as const
  const parseWith = (t: string, toolset: ReadonlyArray<ToolTags.ToolDefinition>) => () => {
    const r = ToolTags.parse(t, { tools: toolset, idGenerator: ids() })
    return r.parts.length + r.invalid.length
  }
  for (const [label, text, toolset] of worst) {
    const [tProse, tWorst] = race(parseWith(plain.slice(0, text.length), toolset), parseWith(text, toolset), 7)
    const ratio = tWorst / tProse
    out.push({
      name: `parse time per char, ${label} vs prose`,
      ratio,
      target: "≤ 3",
      pass: ratio <= 3,
      detail: `${(text.length / 1024).toFixed(0)} KiB each: prose ${ms(tProse)}, worst ${ms(tWorst)}`
    })
  }
  // Calls and nothing else cost more per character than prose whatever the schema; the anyOf must add nothing.
  const calls = anyOfCalls(MB)
  const plainTools = [{ name: "deep", parameters: { type: "object", properties: { q: { type: "object" }, n: { type: "object" } } } }]
  const [tPlain, tAnyOf] = race(parseWith(calls, plainTools), parseWith(calls, anyOfTools), 7)
  out.push({
    name: "1 MiB of calls only: typed by the anyOf vs by a plain schema",
    ratio: tAnyOf / tPlain,
    target: "",
    detail: `plain ${ms(tPlain)}, anyOf ${ms(tAnyOf)}; prose of the same size ${ms(race(parseWith(plain, tools), parseWith(plain, tools), 3)[0])}`
  })
  if (sink === -1) console.log(sink)
  return out
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain) {
  const results = await run()
  console.table(results.map((r) => ({ ...r, ratio: Number(r.ratio.toFixed(3)) })))
}
