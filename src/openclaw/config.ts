/**
 * The edits `effect-aios openclaw setup` makes to an OpenClaw config document (`openclaw.json`), and how
 * `openclaw remove` takes exactly those back; also what OpenClaw makes of a document (model allow-list, plugin
 * allow-list, the provider entry's local key), which the doctor inspects. Pure: documents in, documents and the
 * list of changes out. Reading and writing the file is the CLI's (`cli/ConfigFile.ts`).
 *
 * @since 0.2.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Path from "node:path"
import { isDeepStrictEqual } from "node:util"
import { PROVIDER_ID, type ProviderEntry } from "./models.js"

/** A JSON object (the config root and every container in it). @since 0.2.0 */
export type JsonObject = { [key: string]: unknown }

/** Where a value sits in the document, key by key. @since 0.2.0 */
export const KeyPath = Schema.Array(Schema.String)
/** @since 0.2.0 */
export type KeyPath = typeof KeyPath.Type

/**
 * One edit `setup` made, with what `remove` needs to take it back (a Schema: the CLI keeps them in a record
 * file beside the config).
 *
 * - `create`: a container that did not exist; removed again only while it is empty.
 * - `set`: a value written; restored (or deleted when there was none) only while it is still `after`.
 * - `append`: a value appended to an array; that one element is removed again.
 *
 * @since 0.2.0
 */
export const Change = Schema.Union(
  Schema.Struct({ op: Schema.Literal("create"), path: KeyPath, empty: Schema.Literal("object", "array") }),
  Schema.Struct({
    op: Schema.Literal("set"),
    path: KeyPath,
    had: Schema.Boolean,
    before: Schema.optionalWith(Schema.Unknown, { exact: true }),
    after: Schema.Unknown
  }),
  Schema.Struct({ op: Schema.Literal("append"), path: KeyPath, value: Schema.Unknown })
)
/** @since 0.2.0 */
export type Change = typeof Change.Type

/**
 * What `setup` writes.
 *
 * @since 0.2.0
 */
export interface SetupInput {
  /** The plugin folder (holding `openclaw.plugin.json`), added to `plugins.load.paths`. */
  readonly pluginDir: string
  /** The kernel URL the plugin is to use; written to `plugins.entries.aios.config.baseUrl` unless it is the default there. */
  readonly baseUrl: string
  /** The plugin's default URL, left implicit. */
  readonly defaultBaseUrl: string
  /**
   * The loopback provider entry (a loopback `baseUrl` and a non-empty `models` list earn OpenClaw's local key);
   * `undefined` for a remote kernel (authorize with `AIOS_API_KEY` instead).
   */
  readonly provider: ProviderEntry | undefined
  /** The kernel's model names, for `aios/<name>` entries in an existing model allow-list. */
  readonly models: ReadonlyArray<string>
  /** For `~` in existing load paths. */
  readonly home?: string | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------------------------

/** Whether `u` is a plain JSON object. @since 0.2.0 */
export const isObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

/** The value at `path`, own properties only. @since 0.2.0 */
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

/** `plugins.entries.aios`, `agents.defaults.models["aios/echo"]`. @since 0.2.0 */
export const renderPath = (path: KeyPath): string =>
  path.map((k, i) => (/^[A-Za-z_$][\w$-]*$/.test(k) ? `${i === 0 ? "" : "."}${k}` : `[${JSON.stringify(k)}]`)).join("")

/** `null`, `an array`, `an object`, `a string`, …: for messages about a value of the wrong type. @since 0.2.0 */
export const describeType = (u: unknown): string =>
  u === null ? "null" : Array.isArray(u) ? "an array" : typeof u === "object" ? "an object" : `a ${typeof u}`

const clone = <A>(value: A): A => structuredClone(value)

/** `~` and `~/…` under `home` (when given); any other path as is. @since 0.2.0 */
export const expandHome = (p: string, home: string | undefined): string =>
  home !== undefined && (p === "~" || p.startsWith("~/")) ? Path.join(home, p.slice(1)) : p

/** Whether two plugin paths name the same folder (`~` expanded, relative paths resolved, trailing slashes ignored). @since 0.2.0 */
export const samePath = (a: string, b: string, home?: string | undefined): boolean =>
  Path.resolve(expandHome(a.trim(), home)) === Path.resolve(expandHome(b.trim(), home))

/** Whether a kernel URL is on this machine (OpenClaw's condition for the local key). @since 0.2.0 */
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
 * @since 0.2.0
 */
export type ModelRestriction =
  | { readonly _tag: "None" }
  | { readonly _tag: "Policy"; readonly refs: ReadonlyArray<string> }
  | { readonly _tag: "Legacy"; readonly refs: ReadonlyArray<string> }

/** @since 0.2.0 */
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

/** Whether `restriction` lets `ref` (`aios/<model>`) be selected. @since 0.2.0 */
export const allowsModel = (restriction: ModelRestriction, ref: string): boolean =>
  restriction._tag === "None" ||
  restriction.refs.some((r) => r.trim() === ref || r.trim() === `${PROVIDER_ID}/*`)

/** `plugins.allow` when it restricts (a non-empty list); an empty or absent list lets any plugin load. @since 0.2.0 */
export const pluginAllowList = (doc: unknown): ReadonlyArray<unknown> | undefined => {
  const allow = getAt(doc, ["plugins", "allow"])
  return Array.isArray(allow) && allow.length > 0 ? allow : undefined
}

/**
 * Why OpenClaw would not grant the local key to `models.providers.aios` (conditions of its
 * `hasSyntheticLocalProviderAuthConfig`), or `undefined` when it would, or when the entry has its own `apiKey`.
 *
 * @since 0.2.0
 */
export const providerAuthProblem = (doc: unknown): string | undefined => {
  const entry = getAt(doc, ["models", "providers", PROVIDER_ID])
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
// setup / remove
// ---------------------------------------------------------------------------------------------------------------

/**
 * A document `setup` cannot edit: a key it needs holds something of the wrong type.
 *
 * @since 0.2.0
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
    issues.push(`${renderPath(path)} is ${describeType(current)}, expected ${empty === "object" ? "an object" : "an array"}`)
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

/**
 * What `effect-aios openclaw setup` does to a document: load path, enabled entry, allow-list (only when one
 * exists), plugin `baseUrl` (when not the default), the loopback provider entry, and `aios/<model>` in the model
 * allow-list (only when one exists). Returns the new document and the changes, none when it is already set up.
 *
 * @since 0.2.0
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
  if (e.objects(["plugins", "entries", PROVIDER_ID])) {
    e.set(["plugins", "entries", PROVIDER_ID, "enabled"], true)
    const configured = normalizeUrl(getAt(doc, ["plugins", "entries", PROVIDER_ID, "config", "baseUrl"]))
    if (configured === undefined ? input.baseUrl !== input.defaultBaseUrl : configured !== input.baseUrl) {
      if (e.objects(["plugins", "entries", PROVIDER_ID, "config"])) {
        e.set(["plugins", "entries", PROVIDER_ID, "config", "baseUrl"], input.baseUrl)
      }
    }
  }
  const allow = pluginAllowList(doc)
  if (allow !== undefined && !allow.includes(PROVIDER_ID)) e.append(["plugins", "allow"], PROVIDER_ID)

  if (input.provider !== undefined && e.objects(["models", "providers", PROVIDER_ID])) {
    const base = ["models", "providers", PROVIDER_ID]
    e.set([...base, "baseUrl"], input.provider.baseUrl)
    e.set([...base, "api"], input.provider.api)
    e.set([...base, "models"], JSON.parse(JSON.stringify(input.provider.models)))
  }

  const restriction = modelRestriction(doc)
  for (const model of input.models) {
    const ref = `${PROVIDER_ID}/${model}`
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
 * @since 0.2.0
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
 * @since 0.2.0
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
