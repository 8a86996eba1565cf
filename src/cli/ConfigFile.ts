/**
 * The OpenClaw config file (`openclaw.json`, JSON5 accepted) on disk: where it is, reading and parsing it,
 * writing it atomically with a backup beside it, and the record of what `setup` changed
 * (`<config>.effect-aios.json`). The edits themselves are pure, in `openclaw/config.ts`.
 *
 * Output is plain JSON (OpenClaw reads JSON and JSON5), so comments in a JSON5 file do not survive a write; the
 * backup keeps the original.
 *
 * @since 0.2.0
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
import { Change, describeType, expandHome, isObject, type JsonObject } from "../openclaw/config.js"

/**
 * A config file that cannot be read, parsed or written.
 *
 * @since 0.2.0
 */
export class ConfigFileError extends Data.TaggedError("ConfigFileError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

const envVar = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Config.map(Option.map((s) => s.trim())),
    Config.map(Option.filter((s) => s !== ""))
  )

/** The home folder OpenClaw uses: `$OPENCLAW_HOME`, else `$HOME`, else the OS's. @since 0.2.0 */
export const userHome: Config.Config<string> = Config.all([envVar("OPENCLAW_HOME"), envVar("HOME")]).pipe(
  Config.map(([openclaw, home]) => Option.getOrElse(Option.orElse(openclaw, () => home), () => Os.homedir()))
)

/**
 * The config path: `flag`, else `$OPENCLAW_CONFIG_PATH`, else `$OPENCLAW_STATE_DIR/openclaw.json`, else
 * `~/.openclaw/openclaw.json` (home: `$OPENCLAW_HOME`, else `$HOME`).
 *
 * @since 0.2.0
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

/** The record of what `setup` changed, beside the config. @since 0.2.0 */
export const recordPath = (configPath: string): string => `${configPath}.effect-aios.json`

/**
 * A config file as read.
 *
 * @since 0.2.0
 */
export interface Loaded {
  readonly path: string
  readonly exists: boolean
  readonly doc: JsonObject
  /** False when the file used JSON5 syntax (comments, trailing commas, unquoted keys…). */
  readonly strictJson: boolean
}

const fsError = (path: string, what: string) => (e: { readonly message: string }) =>
  new ConfigFileError({ path, reason: `cannot ${what}: ${e.message}` })

/** Parses JSON5 text into a document; the root must be an object. @since 0.2.0 */
export const parse = (path: string, text: string): Either.Either<{ doc: JsonObject; strictJson: boolean }, ConfigFileError> => {
  if (text.trim() === "") return Either.right({ doc: {}, strictJson: true })
  return Either.try({
    try: () => JSON5.parse<unknown>(text),
    catch: (e) =>
      new ConfigFileError({
        path,
        reason: `not valid JSON5 (${e instanceof Error ? e.message.replace(/^JSON5: /, "") : String(e)})`
      })
  }).pipe(
    Either.filterOrLeft(isObject, (root) =>
      new ConfigFileError({ path, reason: `the top level is ${describeType(root)}, expected an object` })),
    Either.map((doc) => ({ doc, strictJson: Either.isRight(Either.try(() => JSON.parse(text))) }))
  )
}

/**
 * Reads the config; a missing file is an empty document.
 *
 * @since 0.2.0
 */
export const load = (path: string): Effect.Effect<Loaded, ConfigFileError, FileSystem.FileSystem> =>
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

/** JSON, two-space indented; JSON5 only when the document holds `Infinity` or `NaN`, which JSON cannot. @since 0.2.0 */
export const serialize = (doc: JsonObject): string =>
  `${hasNonFinite(doc) ? JSON5.stringify(doc, null, 2) : JSON.stringify(doc, null, 2)}\n`

/**
 * Replaces `path` atomically: a temporary file in the same folder, renamed over it, keeping the file's mode
 * (0600 for a new file: configs hold secrets). A symlinked config is written through to its target.
 *
 * @since 0.2.0
 */
export const writeAtomic = (path: string, text: string): Effect.Effect<void, ConfigFileError, FileSystem.FileSystem> =>
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
 * @since 0.2.0
 */
export const backup = (path: string): Effect.Effect<string, ConfigFileError, FileSystem.FileSystem> =>
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

/**
 * What `setup` changed in one config, kept in `<config>.effect-aios.json` so that `remove` can take exactly
 * that back.
 *
 * @since 0.2.0
 */
export const SetupRecord = Schema.Struct({
  version: Schema.Literal(1),
  tool: Schema.Literal("effect-aios"),
  config: Schema.String,
  /** The config file did not exist before the first `setup`. */
  createdFile: Schema.Boolean,
  changes: Schema.Array(Change)
})
/** @since 0.2.0 */
export type SetupRecord = typeof SetupRecord.Type

/** Reads the record beside `configPath`, if there is one. @since 0.2.0 */
export const readRecord = (
  configPath: string
): Effect.Effect<Option.Option<SetupRecord>, ConfigFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = recordPath(configPath)
    if (!(yield* fs.exists(path).pipe(Effect.mapError(fsError(path, "check it"))))) return Option.none()
    const text = yield* fs.readFileString(path).pipe(Effect.mapError(fsError(path, "read it")))
    const json = yield* Either.try({
      try: () => JSON.parse(text) as unknown,
      catch: () => new ConfigFileError({ path, reason: "not valid JSON; delete it only if you will undo the setup by hand" })
    })
    return Option.some(
      yield* Schema.decodeUnknown(SetupRecord)(json).pipe(
        Effect.mapError(() => new ConfigFileError({ path, reason: "not an effect-aios setup record" }))
      )
    )
  })

/** Writes (or, for `undefined`, deletes) the record beside `configPath`. @since 0.2.0 */
export const writeRecord = (
  configPath: string,
  record: SetupRecord | undefined
): Effect.Effect<void, ConfigFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = recordPath(configPath)
    if (record === undefined) {
      yield* fs.remove(path, { force: true }).pipe(Effect.mapError(fsError(path, "delete it")))
      return
    }
    yield* writeAtomic(path, `${JSON.stringify(Schema.encodeSync(SetupRecord)(record), null, 2)}\n`)
  })
