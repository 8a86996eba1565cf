/**
 * Model aliases for `Llm`: the `aliases` config key and `OPENCLAW_MODEL_<ALIAS>` variables, read through Effect's
 * `Config` (so any `ConfigProvider` works, `fromEnv` by default). Lookup is case-insensitive; a variable wins
 * over a config entry for the same alias.
 *
 * @internal
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as HashSet from "effect/HashSet"
import * as Option from "effect/Option"

const PREFIX = "OPENCLAW_MODEL_"

/** The variable an alias is read from: `haiku` → `OPENCLAW_MODEL_HAIKU`, `gpt-4o` → `OPENCLAW_MODEL_GPT_4O`. */
export const envName = (alias: string): string => PREFIX + alias.trim().toUpperCase().replace(/[^A-Z0-9]+/g, "_")

/** Where an alias came from. */
export interface Resolved {
  readonly alias: string
  readonly target: string
  readonly source: "env" | "config"
}

const fromEnv = (alias: string): Effect.Effect<Option.Option<string>> =>
  Config.option(Config.nonEmptyString(envName(alias))).pipe(
    Effect.map(Option.map((s) => s.trim())),
    Effect.map(Option.filter((s) => s !== "")),
    // A variable that is there but unreadable is no alias; the unknown-model error lists what is known.
    Effect.orElseSucceed(() => Option.none<string>())
  )

const fromConfig = (aliases: Readonly<Record<string, string>>, alias: string): Option.Option<string> => {
  const key = alias.trim().toLowerCase()
  const found = Object.entries(aliases).find(([name]) => name.trim().toLowerCase() === key)
  return Option.fromNullable(found?.[1])
}

/** The model an alias stands for, if `name` is one. One level only: an alias never names another alias. */
export const lookup = (
  aliases: Readonly<Record<string, string>>,
  name: string
): Effect.Effect<Option.Option<Resolved>> =>
  name.trim() === "" ? Effect.succeed(Option.none()) : Effect.map(fromEnv(name), (env) =>
    Option.match(env, {
      onSome: (target) => Option.some<Resolved>({ alias: name, target, source: "env" }),
      onNone: () => Option.map(fromConfig(aliases, name), (target): Resolved => ({ alias: name, target, source: "config" }))
    }))

/**
 * The aliases the environment defines, for error messages. Flat providers (`fromMap`, `fromJson`) hold each
 * variable as one key; `fromEnv` splits names at `_`, so its keys are walked segment by segment.
 */
export const listEnv: Effect.Effect<ReadonlyArray<string>> = Effect.configProviderWith((provider) => {
  const exists = (name: string) =>
    provider.load(Config.nonEmptyString(name)).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
  const children = (path: ReadonlyArray<string>) =>
    provider.flattened.enumerateChildren(path).pipe(
      Effect.map((set) => [...HashSet.values(set)]),
      Effect.orElseSucceed((): Array<string> => [])
    )
  const walk = (path: ReadonlyArray<string>, depth: number): Effect.Effect<Array<string>> =>
    depth > 4 ? Effect.succeed([]) : Effect.flatMap(children(path), (names) =>
      Effect.forEach(names, (child) => {
        const next = [...path, child]
        const name = next.join("_")
        return Effect.zipWith(
          name.startsWith(PREFIX) ? exists(name) : Effect.succeed(false),
          walk(next, depth + 1),
          (here, below) => (here ? [name, ...below] : below)
        )
      }).pipe(Effect.map((lists) => lists.flat())))
  const flat = Effect.flatMap(children([]), (names) =>
    Effect.filter(names.filter((n) => n.toUpperCase().startsWith(PREFIX)), exists))
  return Effect.zipWith(flat, walk(["OPENCLAW", "MODEL"], 0), (a, b) => {
    const aliases = [...a, ...b].map((n) => n.slice(PREFIX.length).toLowerCase()).filter((n) => n !== "")
    return [...new Set(aliases)].sort()
  })
})

/** Every alias known now: config keys and environment variables, deduplicated case-insensitively. */
export const listAll = (aliases: Readonly<Record<string, string>>): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(listEnv, (env) => {
    const seen = new Set<string>()
    const out: Array<string> = []
    for (const name of [...Object.keys(aliases), ...env]) {
      const key = name.trim().toLowerCase()
      if (key === "" || seen.has(key)) continue
      seen.add(key)
      out.push(name.trim())
    }
    return out.sort((a, b) => a.localeCompare(b))
  })
