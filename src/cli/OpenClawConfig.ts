/**
 * The OpenClaw config file (`openclaw.json`, JSON5 accepted) as the CLI reads and edits it: where it is, what
 * `openclaw setup` adds (a pure function returning the new document and the list of changes), how `openclaw
 * remove` takes exactly those changes back, what the doctor inspects, and the file handling (atomic write, a
 * backup beside the file, a record of the changes in `<config>.effect-aios.json`).
 *
 * Output is plain JSON (OpenClaw reads JSON and JSON5), so comments in a JSON5 file do not survive a write; the
 * backup keeps the original.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import JSON5 from "json5"
import * as Os from "node:os"
import * as Path from "node:path"
import { isDeepStrictEqual } from "node:util"
import type { ModelRow } from "../ModelCatalog.js"

/** The plugin and provider id. */
export const PLUGIN_ID = "aios"

/** A JSON object (the config root and every container in it). */
export type JsonObject = { [key: string]: unknown }

/** Where a value sits in the document, key by key. */
export type KeyPath = ReadonlyArray<string>

/**
 * One edit `setup` made, with what `remove` needs to take it back.
 *
 * @since 0.1.0
 */
export type Change =
  /** A container that did not exist; removed again only while it is empty. */
  | { readonly op: "create"; readonly path: KeyPath; readonly empty: "object" | "array" }
  /** A value written; restored (or deleted when there was none) only while it is still `after`. */
  | { readonly op: "set"; readonly path: KeyPath; readonly had: boolean; readonly before?: unknown; readonly after: unknown }
  /** A value appended to an array; that one element is removed again. */
  | { readonly op: "append"; readonly path: KeyPath; readonly value: unknown }

/** A `models.providers.aios` entry: a loopback `baseUrl` and a non-empty `models` list earn OpenClaw's local key. */
export interface ProviderEntry {
  readonly baseUrl: string
  readonly api: "openai-completions"
  readonly models: ReadonlyArray<ModelRow>
}

/**
 * What `setup` writes.
 *
 * @since 0.1.0
 */
export interface SetupInput {
  /** The plugin folder (holding `openclaw.plugin.json`), added to `plugins.load.paths`. */
  readonly pluginDir: string
  /** The kernel URL the plugin is to use; written to `plugins.entries.aios.config.baseUrl` unless it is the default there. */
  readonly baseUrl: string
  /** The plugin's default URL, left implicit. */
  readonly defaultBaseUrl: string
  /** The loopback provider entry; `undefined` for a remote kernel (authorize with `AIOS_API_KEY` instead). */
  readonly provider: ProviderEntry | undefined
  /** The kernel's model names, for `aios/<name>` entries in an existing model allow-list. */
  readonly models: ReadonlyArray<string>
  /** For `~` in existing load paths. */
  readonly home?: string | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------------------------

/** Whether `u` is a plain JSON object. */
export const isObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

/** The value at `path`, own properties only. */
export const getAt = (doc: unknown, path: KeyPath): unknown => {
  let current: unknown = doc
  for (const key of path) {
    if (!isObject(current) || !Object.hasOwn(current, key)) return undefined
    current = current[key]
  }
  return current
}

const setAt = (doc: JsonObject, path: KeyPath, value: unknown): void => {
  const parent = getAt(doc, path.slice(0, -1))
  const key = path[path.length - 1]
  // defineProperty: a key such as "__proto__" stays an ordinary property.
  if (isObject(parent) && key !== undefined) {
    Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true })
  }
}

const deleteAt = (doc: JsonObject, path: KeyPath): void => {
  const parent = getAt(doc, path.slice(0, -1))
  const key = path[path.length - 1]
  if (isObject(parent) && key !== undefined) delete parent[key]
}

/** `plugins.entries.aios`, `agents.defaults.models["aios/echo"]`. */
export const renderPath = (path: KeyPath): string =>
  path.map((k, i) => (/^[A-Za-z_$][\w$-]*$/.test(k) ? `${i === 0 ? "" : "."}${k}` : `[${JSON.stringify(k)}]`)).join("")

const clone = <A>(value: A): A => structuredClone(value)

const expandHome = (p: string, home: string | undefined): string =>
  home !== undefined && (p === "~" || p.startsWith("~/")) ? Path.join(home, p.slice(1)) : p

/** Whether two plugin paths name the same folder (`~` expanded, relative paths resolved, trailing slashes ignored). */
export const samePath = (a: string, b: string, home?: string | undefined): boolean =>
  Path.resolve(expandHome(a.trim(), home)) === Path.resolve(expandHome(b.trim(), home))

/** Whether a kernel URL is on this machine (OpenClaw's condition for the local key). */
export const isLoopbackUrl = (url: string): boolean => {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "").toLowerCase()
    return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host)
  } catch {
    return false
  }
}

const normalizeUrl = (u: unknown): string | undefined =>
  typeof u === "string" ? u.trim().replace(/\/+$/, "") : undefined

// ---------------------------------------------------------------------------------------------------------------
// What OpenClaw makes of a document (shared by setup and the doctor)
// ---------------------------------------------------------------------------------------------------------------

/**
 * The model allow-list in force for the default agent: `agents.defaults.modelPolicy.allow` when the policy owns
 * `allow`, else the legacy `agents.defaults.models` map when it has keys (and was not migrated), else none, and
 * then every model may be selected. Creating a list where there was none would restrict the user's other models,
 * so `setup` only adds to one that exists.
 *
 * @since 0.1.0
 */
export type ModelRestriction =
  | { readonly _tag: "None" }
  | { readonly _tag: "Policy"; readonly refs: ReadonlyArray<string> }
  | { readonly _tag: "Legacy"; readonly refs: ReadonlyArray<string> }

/** @since 0.1.0 */
export const modelRestriction = (doc: unknown): ModelRestriction => {
  const defaults = getAt(doc, ["agents", "defaults"])
  const policy = getAt(defaults, ["modelPolicy"])
  if (isObject(policy) && Object.hasOwn(policy, "allow")) {
    // Any entry restricts, even a blank one (OpenClaw counts entries before it skips blanks).
    return Array.isArray(policy.allow) && policy.allow.length > 0
      ? { _tag: "Policy", refs: policy.allow.filter((r): r is string => typeof r === "string") }
      : { _tag: "None" }
  }
  if (getAt(doc, ["meta", "migrations", "modelPolicyAllowlist"]) === true || isObject(policy)) return { _tag: "None" }
  const legacy = getAt(defaults, ["models"])
  if (isObject(legacy)) {
    const refs = Object.keys(legacy).filter((k) => k.trim() !== "")
    if (refs.length > 0) return { _tag: "Legacy", refs }
  }
  return { _tag: "None" }
}

/** Whether `restriction` lets `ref` (`aios/<model>`) be selected. */
export const allowsModel = (restriction: ModelRestriction, ref: string): boolean =>
  restriction._tag === "None" ||
  restriction.refs.some((r) => r.trim() === ref || r.trim() === `${PLUGIN_ID}/*`)

/** `plugins.allow` when it restricts (a non-empty list); an empty or absent list lets any plugin load. */
export const pluginAllowList = (doc: unknown): ReadonlyArray<unknown> | undefined => {
  const allow = getAt(doc, ["plugins", "allow"])
  return Array.isArray(allow) && allow.length > 0 ? allow : undefined
}

/**
 * Why OpenClaw would not grant the local key to `models.providers.aios` (conditions of its
 * `hasSyntheticLocalProviderAuthConfig`), or `undefined` when it would, or when the entry has its own `apiKey`.
 *
 * @since 0.1.0
 */
export const providerAuthProblem = (doc: unknown): string | undefined => {
  const entry = getAt(doc, ["models", "providers", PLUGIN_ID])
  if (entry === undefined) return "there is no models.providers.aios entry"
  if (!isObject(entry)) return "models.providers.aios is not an object"
  if (typeof entry.apiKey === "string" && entry.apiKey.trim() !== "") return undefined
  if (typeof entry.baseUrl !== "string" || !isLoopbackUrl(entry.baseUrl)) {
    return `models.providers.aios.baseUrl (${JSON.stringify(entry.baseUrl)}) is not a loopback URL`
  }
  if (typeof entry.api !== "string" || entry.api.trim() === "") return "models.providers.aios.api is missing"
  if (!Array.isArray(entry.models) || entry.models.length === 0) return "models.providers.aios.models is empty"
  if (entry.auth !== undefined && entry.auth !== "api-key") {
    return `models.providers.aios.auth is ${JSON.stringify(entry.auth)} (the local key needs it unset or "api-key")`
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// setup / remove, pure
// ---------------------------------------------------------------------------------------------------------------

/**
 * A document `setup` cannot edit: a key it needs holds something of the wrong type.
 *
 * @since 0.1.0
 */
export interface ShapeIssues {
  readonly issues: ReadonlyArray<string>
}

/** A recorder of edits on a private copy of a document. */
const makeEditor = (doc: JsonObject) => {
  const changes: Array<Change> = []
  const issues: Array<string> = []
  const container = (path: KeyPath, empty: "object" | "array"): boolean => {
    const current = getAt(doc, path)
    if (current === undefined) {
      setAt(doc, path, empty === "object" ? {} : [])
      changes.push({ op: "create", path, empty })
      return true
    }
    if (empty === "object" ? isObject(current) : Array.isArray(current)) return true
    issues.push(`${renderPath(path)} is ${describe(current)}, expected ${empty === "object" ? "an object" : "an array"}`)
    return false
  }
  const objects = (path: KeyPath): boolean => path.every((_, i) => container(path.slice(0, i + 1), "object"))
  const set = (path: KeyPath, value: unknown): void => {
    const current = getAt(doc, path)
    if (isDeepStrictEqual(current, value)) return
    changes.push(
      current === undefined
        ? { op: "set", path, had: false, after: clone(value) }
        : { op: "set", path, had: true, before: clone(current), after: clone(value) }
    )
    setAt(doc, path, clone(value))
  }
  const append = (path: KeyPath, value: unknown): void => {
    const array = getAt(doc, path)
    if (!Array.isArray(array)) return
    array.push(value)
    changes.push({ op: "append", path, value })
  }
  return { changes, issues, container, objects, set, append }
}

const describe = (u: unknown): string =>
  u === null ? "null" : Array.isArray(u) ? "an array" : typeof u === "object" ? "an object" : `a ${typeof u}`

/**
 * What `effect-aios openclaw setup` does to a document: load path, enabled entry, allow-list (only when one
 * exists), plugin `baseUrl` (when not the default), the loopback provider entry, and `aios/<model>` in the model
 * allow-list (only when one exists). Returns the new document and the changes, none when it is already set up.
 *
 * @since 0.1.0
 */
export const setup = (
  original: JsonObject,
  input: SetupInput
): Either.Either<{ readonly doc: JsonObject; readonly changes: ReadonlyArray<Change> }, ShapeIssues> => {
  const doc = clone(original)
  const e = makeEditor(doc)

  if (e.objects(["plugins", "load"]) && e.container(["plugins", "load", "paths"], "array")) {
    const paths = getAt(doc, ["plugins", "load", "paths"]) as Array<unknown>
    if (!paths.some((p) => typeof p === "string" && samePath(p, input.pluginDir, input.home))) {
      e.append(["plugins", "load", "paths"], input.pluginDir)
    }
  }
  if (e.objects(["plugins", "entries", PLUGIN_ID])) {
    e.set(["plugins", "entries", PLUGIN_ID, "enabled"], true)
    const configured = normalizeUrl(getAt(doc, ["plugins", "entries", PLUGIN_ID, "config", "baseUrl"]))
    if (configured === undefined ? input.baseUrl !== input.defaultBaseUrl : configured !== input.baseUrl) {
      if (e.objects(["plugins", "entries", PLUGIN_ID, "config"])) {
        e.set(["plugins", "entries", PLUGIN_ID, "config", "baseUrl"], input.baseUrl)
      }
    }
  }
  const allow = pluginAllowList(doc)
  if (allow !== undefined && !allow.includes(PLUGIN_ID)) e.append(["plugins", "allow"], PLUGIN_ID)

  if (input.provider !== undefined && e.objects(["models", "providers", PLUGIN_ID])) {
    const base = ["models", "providers", PLUGIN_ID]
    e.set([...base, "baseUrl"], input.provider.baseUrl)
    e.set([...base, "api"], input.provider.api)
    e.set([...base, "models"], JSON.parse(JSON.stringify(input.provider.models)))
  }

  const restriction = modelRestriction(doc)
  for (const model of input.models) {
    const ref = `${PLUGIN_ID}/${model}`
    if (allowsModel(restriction, ref)) continue
    if (restriction._tag === "Policy") {
      if (e.container(["agents", "defaults", "modelPolicy", "allow"], "array")) {
        e.append(["agents", "defaults", "modelPolicy", "allow"], ref)
      }
    } else if (restriction._tag === "Legacy") {
      e.set(["agents", "defaults", "models", ref], {})
    }
  }

  return e.issues.length > 0 ? Either.left({ issues: e.issues }) : Either.right({ doc, changes: e.changes })
}

/**
 * Takes `changes` back, newest first: a value still as `setup` wrote it gets its old value back (or goes),
 * an appended element goes, a container `setup` created goes while it is empty. Values changed since are
 * kept and reported.
 *
 * @since 0.1.0
 */
export const remove = (
  original: JsonObject,
  changes: ReadonlyArray<Change>
): { readonly doc: JsonObject; readonly kept: ReadonlyArray<string> } => {
  const doc = clone(original)
  const kept: Array<string> = []
  for (const change of [...changes].reverse()) {
    const current = getAt(doc, change.path)
    switch (change.op) {
      case "create":
        if (isDeepStrictEqual(current, change.empty === "object" ? {} : [])) deleteAt(doc, change.path)
        break
      case "set":
        if (current === undefined) break
        if (!isDeepStrictEqual(current, change.after)) {
          kept.push(`${renderPath(change.path)} (changed since setup)`)
        } else if (change.had) setAt(doc, change.path, clone(change.before))
        else deleteAt(doc, change.path)
        break
      case "append":
        if (Array.isArray(current)) {
          const at = current.findLastIndex((v) => isDeepStrictEqual(v, change.value))
          if (at >= 0) current.splice(at, 1)
        }
        break
    }
  }
  return { doc, kept }
}

/**
 * The record after a further `setup`: a container or element already recorded is not recorded twice; a value
 * written again keeps its first `before` while it was untouched in between, else the newer one.
 *
 * @since 0.1.0
 */
export const mergeChanges = (previous: ReadonlyArray<Change>, next: ReadonlyArray<Change>): ReadonlyArray<Change> => {
  const merged = [...previous]
  const samePathAs = (a: Change) => (b: Change) => a.op === b.op && isDeepStrictEqual(a.path, b.path)
  for (const change of next) {
    const at = merged.findIndex(samePathAs(change))
    if (at < 0) {
      merged.push(change)
      continue
    }
    const old = merged[at]!
    if (change.op === "append" && old.op === "append" && !isDeepStrictEqual(old.value, change.value)) {
      merged.push(change)
    } else if (change.op === "set" && old.op === "set") {
      merged[at] = change.had && isDeepStrictEqual(change.before, old.after) ? { ...old, after: change.after } : change
    }
  }
  return merged
}

// ---------------------------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------------------------

/**
 * A config file that cannot be read, parsed or written.
 *
 * @since 0.1.0
 */
export class OpenClawConfigError extends Data.TaggedError("OpenClawConfigError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

/**
 * The config path: `flag`, else `$OPENCLAW_CONFIG_PATH`, else `$OPENCLAW_STATE_DIR/openclaw.json`, else
 * `~/.openclaw/openclaw.json` (home: `$OPENCLAW_HOME`, else `$HOME`).
 *
 * @since 0.1.0
 */
export const resolvePath = (flag: Option.Option<string>): Effect.Effect<string, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const home = yield* userHome
    const resolve = (p: string) => Path.resolve(expandHome(p, home))
    if (Option.isSome(flag)) return resolve(flag.value)
    const configPath = yield* envVar("OPENCLAW_CONFIG_PATH")
    if (Option.isSome(configPath)) return resolve(configPath.value)
    const stateDir = yield* envVar("OPENCLAW_STATE_DIR")
    if (Option.isSome(stateDir)) return Path.join(resolve(stateDir.value), "openclaw.json")
    return Path.join(home, ".openclaw", "openclaw.json")
  })

const envVar = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Config.map(Option.map((s) => s.trim())),
    Config.map(Option.filter((s) => s !== ""))
  )

/** The home folder OpenClaw uses: `$OPENCLAW_HOME`, else `$HOME`, else the OS's. */
export const userHome: Config.Config<string> = Config.all([envVar("OPENCLAW_HOME"), envVar("HOME")]).pipe(
  Config.map(([openclaw, home]) => Option.getOrElse(Option.orElse(openclaw, () => home), () => Os.homedir()))
)

/** The record of what `setup` changed, beside the config. */
export const recordPath = (configPath: string): string => `${configPath}.effect-aios.json`

/**
 * A config file as read.
 *
 * @since 0.1.0
 */
export interface Loaded {
  readonly path: string
  readonly exists: boolean
  readonly doc: JsonObject
  /** False when the file used JSON5 syntax (comments, trailing commas, unquoted keys…). */
  readonly strictJson: boolean
}

const fsError = (path: string, what: string) => (e: { readonly message: string }) =>
  new OpenClawConfigError({ path, reason: `cannot ${what}: ${e.message}` })

/** Parses JSON5 text into a document; the root must be an object. */
export const parse = (path: string, text: string): Either.Either<{ doc: JsonObject; strictJson: boolean }, OpenClawConfigError> => {
  if (text.trim() === "") return Either.right({ doc: {}, strictJson: true })
  return Either.try({
    try: () => JSON5.parse<unknown>(text),
    catch: (e) =>
      new OpenClawConfigError({
        path,
        reason: `not valid JSON5 (${e instanceof Error ? e.message.replace(/^JSON5: /, "") : String(e)})`
      })
  }).pipe(
    Either.filterOrLeft(isObject, (root) =>
      new OpenClawConfigError({ path, reason: `the top level is ${describe(root)}, expected an object` })),
    Either.map((doc) => ({ doc, strictJson: Either.isRight(Either.try(() => JSON.parse(text))) }))
  )
}

/**
 * Reads the config; a missing file is an empty document.
 *
 * @since 0.1.0
 */
export const load = (path: string): Effect.Effect<Loaded, OpenClawConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(path).pipe(Effect.mapError(fsError(path, "check it")))
    if (!exists) return { path, exists, doc: {}, strictJson: true }
    const text = yield* fs.readFileString(path).pipe(Effect.mapError(fsError(path, "read it")))
    const parsed = yield* parse(path, text)
    return { path, exists, ...parsed }
  })

const hasNonFinite = (u: unknown): boolean =>
  typeof u === "number"
    ? !Number.isFinite(u)
    : Array.isArray(u)
    ? u.some(hasNonFinite)
    : isObject(u) && Object.values(u).some(hasNonFinite)

/** JSON, two-space indented; JSON5 only when the document holds `Infinity` or `NaN`, which JSON cannot. */
export const serialize = (doc: JsonObject): string =>
  `${hasNonFinite(doc) ? JSON5.stringify(doc, null, 2) : JSON.stringify(doc, null, 2)}\n`

/**
 * Replaces `path` atomically: a temporary file in the same folder, renamed over it, keeping the file's mode
 * (0600 for a new file: configs hold secrets). A symlinked config is written through to its target.
 *
 * @since 0.1.0
 */
export const writeAtomic = (path: string, text: string): Effect.Effect<void, OpenClawConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(path).pipe(Effect.mapError(fsError(path, "check it")))
    const target = exists ? yield* fs.realPath(path).pipe(Effect.mapError(fsError(path, "resolve it"))) : path
    const mode = exists ? (yield* fs.stat(target).pipe(Effect.mapError(fsError(path, "stat it")))).mode & 0o777 : 0o600
    if (!exists) {
      yield* fs.makeDirectory(Path.dirname(target), { recursive: true }).pipe(
        Effect.mapError(fsError(path, "create its folder"))
      )
    }
    const tmp = `${target}.${process.pid}.${yield* Random.nextIntBetween(100_000, 999_999)}.tmp`
    yield* Effect.gen(function*() {
      yield* fs.writeFileString(tmp, text, { mode })
      yield* fs.chmod(tmp, mode)
      yield* fs.rename(tmp, target)
    }).pipe(
      Effect.mapError(fsError(path, "write it")),
      Effect.tapError(() => fs.remove(tmp).pipe(Effect.ignore))
    )
  })

/**
 * Copies `path` to `<path>.<timestamp>.bak` beside it (same mode) and returns the backup's path.
 *
 * @since 0.1.0
 */
export const backup = (path: string): Effect.Effect<string, OpenClawConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const now = yield* Clock.currentTimeMillis
    const stamp = new Date(now).toISOString().replace(/[:.]/g, "-")
    let target = `${path}.${stamp}.bak`
    for (let n = 1; yield* fs.exists(target).pipe(Effect.orElseSucceed(() => false)); n++) target = `${path}.${stamp}-${n}.bak`
    const mode = (yield* fs.stat(path).pipe(Effect.mapError(fsError(path, "stat it")))).mode & 0o777
    yield* fs.copyFile(path, target).pipe(Effect.mapError(fsError(target, "write the backup")))
    yield* fs.chmod(target, mode).pipe(Effect.mapError(fsError(target, "write the backup")))
    return target
  })

// ---------------------------------------------------------------------------------------------------------------
// The record
// ---------------------------------------------------------------------------------------------------------------

const KeyPathSchema = Schema.Array(Schema.String)
const ChangeSchema = Schema.Union(
  Schema.Struct({ op: Schema.Literal("create"), path: KeyPathSchema, empty: Schema.Literal("object", "array") }),
  Schema.Struct({
    op: Schema.Literal("set"),
    path: KeyPathSchema,
    had: Schema.Boolean,
    before: Schema.optionalWith(Schema.Unknown, { exact: true }),
    after: Schema.Unknown
  }),
  Schema.Struct({ op: Schema.Literal("append"), path: KeyPathSchema, value: Schema.Unknown })
)

/**
 * What `setup` changed in one config, kept in `<config>.effect-aios.json` so that `remove` can take exactly
 * that back.
 *
 * @since 0.1.0
 */
export const SetupRecord = Schema.Struct({
  version: Schema.Literal(1),
  tool: Schema.Literal("effect-aios"),
  config: Schema.String,
  /** The config file did not exist before the first `setup`. */
  createdFile: Schema.Boolean,
  changes: Schema.Array(ChangeSchema)
})
export type SetupRecord = typeof SetupRecord.Type

/** Reads the record beside `configPath`, if there is one. */
export const readRecord = (
  configPath: string
): Effect.Effect<Option.Option<SetupRecord>, OpenClawConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = recordPath(configPath)
    if (!(yield* fs.exists(path).pipe(Effect.mapError(fsError(path, "check it"))))) return Option.none()
    const text = yield* fs.readFileString(path).pipe(Effect.mapError(fsError(path, "read it")))
    const json = yield* Either.try({
      try: () => JSON.parse(text) as unknown,
      catch: () => new OpenClawConfigError({ path, reason: "not valid JSON; delete it only if you will undo the setup by hand" })
    })
    return Option.some(
      yield* Schema.decodeUnknown(SetupRecord)(json).pipe(
        Effect.mapError(() => new OpenClawConfigError({ path, reason: "not an effect-aios setup record" }))
      )
    )
  })

/** Writes (or, for `undefined`, deletes) the record beside `configPath`. */
export const writeRecord = (
  configPath: string,
  record: SetupRecord | undefined
): Effect.Effect<void, OpenClawConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = recordPath(configPath)
    if (record === undefined) {
      yield* fs.remove(path, { force: true }).pipe(Effect.mapError(fsError(path, "delete it")))
      return
    }
    yield* writeAtomic(path, `${JSON.stringify(Schema.encodeSync(SetupRecord)(record), null, 2)}\n`)
  })
