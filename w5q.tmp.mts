import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Channel from "effect/Channel"
const chunks = [{ _tag: "TextDelta", text: "hello" }, { _tag: "Finish" }]
const base = () => Stream.fromIterableEffect(Effect.succeed(chunks))
const load = { n: 0 }
const route = Effect.map(Clock.currentTimeMillis, () => 1)
const routeC = Effect.clockWith((c) => Effect.sync(() => c.unsafeCurrentTimeMillis()))
const variants: Record<string, () => Stream.Stream<any, any>> = {
  base,
  all: () => Stream.suspend(() => { let started = false; return Stream.unwrap(Effect.map(route, () => { load.n++; return base() })).pipe(Stream.mapChunks((c) => { if (Chunk.isNonEmpty(c)) started = true; return c }), Stream.ensuring(Effect.sync(() => { load.n-- })), Stream.catchAll((e) => Stream.fail(e))) }),
  noMap: () => Stream.suspend(() => { return Stream.unwrap(Effect.map(route, () => { load.n++; return base() })).pipe(Stream.ensuring(Effect.sync(() => { load.n-- })), Stream.catchAll((e) => Stream.fail(e))) }),
  noEnsure: () => Stream.suspend(() => { let started = false; return Stream.unwrap(Effect.map(route, () => { load.n++; return base() })).pipe(Stream.mapChunks((c) => { if (Chunk.isNonEmpty(c)) started = true; return c }), Stream.catchAll((e) => Stream.fail(e))) }),
  noCatch: () => Stream.suspend(() => { let started = false; return Stream.unwrap(Effect.map(route, () => { load.n++; return base() })).pipe(Stream.mapChunks((c) => { if (Chunk.isNonEmpty(c)) started = true; return c }), Stream.ensuring(Effect.sync(() => { load.n-- }))) }),
  chanUnwrap: () => Stream.suspend(() => { let started = false; return Stream.fromChannel(Channel.unwrap(Effect.map(route, () => { load.n++; return Stream.toChannel(base()) }))).pipe(Stream.mapChunks((c) => { if (Chunk.isNonEmpty(c)) started = true; return c }), Stream.ensuring(Effect.sync(() => { load.n-- })), Stream.catchAll((e) => Stream.fail(e))) }),
  noUnwrap: () => Stream.suspend(() => { let started = false; return base().pipe(Stream.mapChunks((c) => { if (Chunk.isNonEmpty(c)) started = true; return c }), Stream.ensuring(Effect.sync(() => { load.n-- })), Stream.catchAll((e) => Stream.fail(e))) }),
}
const N = 3000
const res: Record<string, number[]> = {}
for (let r = 0; r < 12; r++) for (const [name, mk] of Object.entries(variants)) {
  const eff = Effect.suspend(() => Stream.runCollect(mk()))
  if (r === 0) await Effect.runPromise(Effect.repeatN(eff, 2000))
  const c = process.cpuUsage()
  await Effect.runPromise(Effect.repeatN(eff, N - 1))
  const u = process.cpuUsage(c)
  ;(res[name] ??= []).push((u.user + u.system) / N)
}
for (const [k, v] of Object.entries(res)) { v.sort((a, b) => a - b); console.log(k.padEnd(10), v[0]!.toFixed(2), "µs min", v[6]!.toFixed(2), "med") }
