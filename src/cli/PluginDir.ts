/**
 * An OpenClaw plugin folder as OpenClaw loads it: `openclaw.plugin.json` (the id) and the entry files named by
 * `package.json`'s `openclaw.extensions`, which must exist (a clone needs `npm run build` first).
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * This package's own folder (where `openclaw.plugin.json` is), from this file's place in `src/cli/` or
 * `dist/cli/`.
 *
 * @since 0.1.0
 */
export const packageRoot: string = Path.resolve(fileURLToPath(new URL("../../", import.meta.url)))

/**
 * The self-contained plugin folder `npm run build` writes (`dist/openclaw-plugin/`: one bundled entry, no declared
 * dependencies), which OpenClaw starts fast: it copies a plugin's declared dependencies on every instance.
 *
 * @since 0.2.0
 */
export const pluginRoot: string = Path.join(packageRoot, "dist", "openclaw-plugin")

/**
 * @since 0.1.0
 */
export interface PluginDir {
  readonly dir: string
  /** `openclaw.plugin.json`'s `id`. */
  readonly id: string | undefined
  /** The entry files and whether each exists. */
  readonly entries: ReadonlyArray<{ readonly file: string; readonly exists: boolean }>
}

const readJson = (fs: FileSystem.FileSystem, file: string): Effect.Effect<Option.Option<Record<string, unknown>>> =>
  fs.readFileString(file).pipe(
    Effect.flatMap((text) => Effect.try(() => JSON.parse(text) as unknown)),
    Effect.map((u) => (typeof u === "object" && u !== null && !Array.isArray(u) ? Option.some(u as Record<string, unknown>) : Option.none())),
    Effect.orElseSucceed(() => Option.none())
  )

/**
 * Reads a plugin folder; `None` when it has no `openclaw.plugin.json`.
 *
 * @since 0.1.0
 */
export const read = (dir: string): Effect.Effect<Option.Option<PluginDir>, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const manifest = yield* readJson(fs, Path.join(dir, "openclaw.plugin.json"))
    if (Option.isNone(manifest)) return Option.none()
    const pkg = yield* readJson(fs, Path.join(dir, "package.json"))
    const openclaw = Option.getOrUndefined(pkg)?.["openclaw"]
    const extensions = typeof openclaw === "object" && openclaw !== null && "extensions" in openclaw &&
        Array.isArray(openclaw.extensions)
      ? openclaw.extensions.filter((e): e is string => typeof e === "string")
      : []
    const entries = yield* Effect.forEach(extensions, (file) =>
      Effect.map(fs.exists(Path.join(dir, file)).pipe(Effect.orElseSucceed(() => false)), (exists) => ({ file, exists })))
    const id = manifest.value["id"]
    return Option.some({ dir, id: typeof id === "string" ? id : undefined, entries })
  })

/** The entry files that are missing, e.g. `./dist/openclaw/index.js` before a build. */
export const missingEntries = (plugin: PluginDir): ReadonlyArray<string> =>
  plugin.entries.length === 0 ? ["(package.json names no openclaw.extensions)"] : plugin.entries.filter((e) => !e.exists).map((e) => e.file)
