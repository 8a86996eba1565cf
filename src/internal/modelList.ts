/**
 * A server's model list, trusted entry by entry: both wires (`/core/llms/list`, `/v1/models`) keep the entries
 * whose name is a usable model id and skip the rest, so one bad entry does not cost the whole list (and so every
 * turn). What was skipped is said once, in one warning, by position and reason (never an entry's other values,
 * which may be secrets).
 */
import type { Model } from "../Backend.js"

/** The longest model id kept. */
export const maxNameLength = 256

// C0 and C1 controls, DEL, line and paragraph separators, bidirectional and zero-width format characters, a BOM,
// and unpaired surrogates: nothing a model id may hold.
const unprintable =
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Why `name` cannot be a model id, or `undefined` when it can. */
export const nameProblem = (name: unknown): string | undefined => {
  if (name === undefined || name === null) return "no name"
  if (typeof name !== "string") return `a name that is not text (${Array.isArray(name) ? "array" : typeof name})`
  if (name.trim() === "") return "a blank name"
  if (name.length > maxNameLength) return `a name over ${maxNameLength} characters`
  if (unprintable.test(name)) return "control or invisible characters in its name"
  if (name.trim() !== name) return "spaces around its name"
  return undefined
}

/** The valid entries of a list, and what was skipped. */
export interface Checked {
  readonly models: ReadonlyArray<Model>
  /** One line per skipped entry (`#3: no name`, `"gpt-4o": listed again`), in list order. */
  readonly skipped: ReadonlyArray<string>
  /** How many entries the list had. */
  readonly total: number
}

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> => u !== null && typeof u === "object" && !Array.isArray(u)

/**
 * Keeps the entries (objects) with a usable `nameKey`, the first of each name; a `backendKey` that is not text is
 * `null`. Nothing else of an entry is kept.
 */
export const check = (entries: ReadonlyArray<unknown>, nameKey: string, backendKey: string): Checked => {
  const models: Array<Model> = []
  const skipped: Array<string> = []
  const seen = new Set<string>()
  entries.forEach((entry, index) => {
    const problem = isRecord(entry) ? nameProblem(entry[nameKey]) : "not an object"
    if (problem !== undefined) {
      skipped.push(`#${index + 1}: ${problem}`)
      return
    }
    const record = entry as Readonly<Record<string, unknown>>
    const name = record[nameKey] as string
    if (seen.has(name)) {
      skipped.push(`${JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name)}: listed again`)
      return
    }
    seen.add(name)
    const backend = record[backendKey]
    models.push({ name, backend: typeof backend === "string" ? backend : null })
  })
  return { models, skipped, total: entries.length }
}

/** The values of an entry beside its name and backend (an AIOS entry's `api_key`, `hostname`, …). */
export const extras = (entry: unknown, nameKey: string, backendKey: string): ReadonlyArray<unknown> =>
  isRecord(entry) ? Object.entries(entry).flatMap(([k, v]) => (k === nameKey || k === backendKey ? [] : [v])) : []

/** The few skipped entries a message names: the first five, then how many more. */
const few = (checked: Checked): string => {
  const shown = checked.skipped.slice(0, 5)
  const more = checked.skipped.length - shown.length
  return `${shown.join("; ")}${more > 0 ? `; and ${more.toLocaleString("en-US")} more` : ""}`
}

/** Why a list with entries but none usable is malformed. */
export const noneUsable = (checked: Checked): string =>
  `none of its ${checked.total} entries has a usable model name (${few(checked)})`

/** The one warning for a list with skipped entries: how many, the first few by position and reason. */
export const warning = (endpoint: string, checked: Checked): string =>
  `Skipped ${checked.skipped.length} of ${checked.total} entries of ${endpoint}: ${few(checked)}. ` +
  `The other ${checked.models.length} are used.`
