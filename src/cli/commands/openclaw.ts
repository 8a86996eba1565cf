/**
 * `effect-aios openclaw setup` and `effect-aios openclaw remove`: everything the plugin needs in the OpenClaw
 * config, written in one go so that one gateway restart picks it up, and exactly that taken back out.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Path from "node:path"
import { isDeepStrictEqual } from "node:util"
import * as AiosConfig from "../../AiosConfig.js"
import { ModelCatalog } from "../../ModelCatalog.js"
import * as OpenClawConfig from "../../openclaw/config.js"
import { AUTH_ENV_VAR, PROVIDER_ID, providerEntry, rowFor } from "../../openclaw/models.js"
import { CliError } from "../CliError.js"
import * as ConfigFile from "../ConfigFile.js"
import * as Output from "../Output.js"
import * as PluginDir from "../PluginDir.js"
import { configOption, kernelConfig, PROBE_TIMEOUT_MS, stack, toCliError, urlOption } from "./shared.js"

const pluginDirOption = Options.directory("plugin-dir").pipe(
  Options.withDescription("The plugin folder to load (default: this package's dist/openclaw-plugin, built by npm run build)"),
  Options.optional
)

/** Any failure as a `CliError` (config, file and kernel errors carry a message naming their file or URL). */
const cli = <A, R>(effect: Effect.Effect<A, unknown, R>): Effect.Effect<A, CliError, R> =>
  Effect.mapError(effect, toCliError)

/**
 * Where the config is and what it holds, and the kernel configuration its plugin entry implies (`--url` and
 * `AIOS_*` over `plugins.entries.aios.config`).
 *
 * @since 0.1.0
 */
export const loadContext = (config: Option.Option<string>, url: Option.Option<string>) =>
  Effect.gen(function*() {
    const path = yield* cli(ConfigFile.resolvePath(config))
    const loaded = yield* cli(ConfigFile.load(path))
    const pluginConfig = OpenClawConfig.getAt(loaded.doc, ["plugins", "entries", PROVIDER_ID, "config"])
    const base = (OpenClawConfig.isObject(pluginConfig) ? pluginConfig : {}) as AiosConfig.AiosConfigInput
    const values = yield* kernelConfig(
      url,
      { ...base, requestTimeoutMs: base.requestTimeoutMs ?? PROBE_TIMEOUT_MS },
      `plugins.entries.aios.config in ${path}, or the environment (AIOS_*)`
    )
    return { path, loaded, values }
  })

const short = (value: unknown): string => {
  const json = JSON.stringify(value) ?? "undefined"
  return json.length > 70 ? `${json.slice(0, 67)}...` : json
}

const describeChange = (change: OpenClawConfig.Change): string | undefined => {
  switch (change.op) {
    case "create":
      return undefined
    case "append":
      return `  + ${OpenClawConfig.renderPath(change.path)} += ${short(change.value)}`
    case "set":
      return `  ${change.had ? "~" : "+"} ${OpenClawConfig.renderPath(change.path)} = ${
        change.path[change.path.length - 1] === "models" && Array.isArray(change.after)
          ? `[${change.after.length} model row(s)]`
          : short(change.after)
      }`
  }
}

/** Warnings about settings `setup` leaves alone but that keep the plugin from loading. */
const blockers = (doc: unknown, path: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (OpenClawConfig.getAt(doc, ["plugins", "enabled"]) === false) {
    out.push(`plugins.enabled is false in ${path}: OpenClaw loads no plugins until you set it to true.`)
  }
  const deny = OpenClawConfig.getAt(doc, ["plugins", "deny"])
  if (Array.isArray(deny) && deny.includes(PROVIDER_ID)) {
    out.push(`plugins.deny lists "aios" in ${path}: remove it there, or the plugin stays blocked.`)
  }
  const entry = OpenClawConfig.getAt(doc, ["models", "providers", PROVIDER_ID])
  if (OpenClawConfig.isObject(entry) && entry.auth !== undefined && entry.auth !== "api-key") {
    out.push(`models.providers.aios.auth is ${JSON.stringify(entry.auth)} in ${path}: OpenClaw's local key needs it unset.`)
  }
  return out
}

/**
 * @since 0.1.0
 */
export const setup = Command.make(
  "setup",
  { config: configOption, url: urlOption, pluginDir: pluginDirOption },
  (args) =>
    Effect.gen(function*() {
      const { loaded, path, values } = yield* loadContext(args.config, args.url)
      const pluginDir = Path.resolve(Option.getOrElse(args.pluginDir, () => PluginDir.pluginRoot))
      const plugin = yield* PluginDir.read(pluginDir)
      if (Option.isNone(plugin) || plugin.value.id !== PROVIDER_ID) {
        return yield* new CliError({
          message: `${pluginDir} holds no "aios" OpenClaw plugin (openclaw.plugin.json); nothing was written to ${path}.`
        })
      }
      const list = yield* Effect.flatMap(ModelCatalog, (c) => c.list).pipe(
        Effect.provide(stack(values)),
        Effect.mapError((e) => new CliError({ message: `${toCliError(e).message} Nothing was written to ${path}.` }))
      )
      if (list.length === 0) {
        return yield* new CliError({
          message: `The kernel at ${values.baseUrl} serves no models; configure one in its config.yaml. Nothing was written to ${path}.`
        })
      }
      const loopback = OpenClawConfig.isLoopbackUrl(values.baseUrl)
      const names = list.map((m) => m.name)
      const planned = OpenClawConfig.setup(loaded.doc, {
        pluginDir,
        baseUrl: values.baseUrl,
        defaultBaseUrl: AiosConfig.defaults.baseUrl,
        provider: loopback ? providerEntry(values.baseUrl, names.map((name) => rowFor(values, name))) : undefined,
        models: names,
        home: yield* ConfigFile.userHome
      })
      if (Either.isLeft(planned)) {
        return yield* new CliError({
          message: `${path}: cannot set up: ${planned.left.issues.join("; ")}. Fix these keys by hand; nothing was written.`
        })
      }
      const { changes, doc } = planned.right

      if (changes.length === 0) {
        yield* Output.line(`${path} is already set up for the aios plugin (${values.baseUrl}, ${names.length} model(s)); nothing changed.`)
      } else {
        const previous = loaded.exists ? yield* cli(ConfigFile.readRecord(path)) : Option.none()
        const backup = loaded.exists ? yield* cli(ConfigFile.backup(path)) : undefined
        yield* cli(ConfigFile.writeAtomic(path, ConfigFile.serialize(doc)))
        yield* cli(ConfigFile.writeRecord(path, {
          version: 1,
          tool: "effect-aios",
          config: path,
          createdFile: Option.match(previous, { onNone: () => !loaded.exists, onSome: (r) => r.createdFile }),
          changes: Option.match(previous, {
            onNone: () => changes,
            onSome: (r) => OpenClawConfig.mergeChanges(r.changes, changes)
          })
        }))
        yield* Output.line(`${loaded.exists ? "Updated" : "Created"} ${path}:`)
        for (const change of changes) {
          const text = describeChange(change)
          if (text !== undefined) yield* Output.line(text)
        }
        if (backup !== undefined) yield* Output.line(`Backup of the previous file: ${backup}`)
        if (!loaded.strictJson) {
          yield* Output.line("Note: the file used JSON5 syntax; it is now plain JSON (comments are in the backup).")
        }
        yield* Output.line(`What was added is recorded in ${ConfigFile.recordPath(path)} for \`effect-aios openclaw remove\`.`)
      }

      const missing = PluginDir.missingEntries(plugin.value)
      if (missing.length > 0) {
        yield* Output.errorLine(
          `warning: the plugin entry ${missing.join(", ")} is missing in ${pluginDir}: run \`npm run build\` there before starting OpenClaw.`
        )
      }
      for (const warning of blockers(doc, path)) yield* Output.errorLine(`warning: ${warning}`)
      if (!loopback) {
        yield* Output.line(
          `The kernel at ${values.baseUrl} is not on this machine, so OpenClaw grants no local key: set ${AUTH_ENV_VAR} (any value) in the gateway's environment.`
        )
      }
      yield* Output.line(
        `Next: openclaw gateway restart (once), then choose a model, e.g. /model aios/${names[0]} or --model aios/${names[0]}.`
      )
    })
).pipe(Command.withDescription("Write what the aios plugin needs into the OpenClaw config (one gateway restart picks it up)"))

/**
 * @since 0.1.0
 */
export const remove = Command.make("remove", { config: configOption }, (args) =>
  Effect.gen(function*() {
    const path = yield* cli(ConfigFile.resolvePath(args.config))
    const loaded = yield* cli(ConfigFile.load(path))
    const record = yield* cli(ConfigFile.readRecord(path))
    if (Option.isNone(record)) {
      return yield* new CliError({
        message: `No effect-aios setup is recorded for ${path} (${
          ConfigFile.recordPath(path)
        } not found); nothing was changed.`
      })
    }
    if (!loaded.exists) {
      yield* cli(ConfigFile.writeRecord(path, undefined))
      yield* Output.line(`${path} no longer exists; removed the stale setup record.`)
      return
    }
    const { doc, kept } = OpenClawConfig.remove(loaded.doc, record.value.changes)
    const fs = yield* FileSystem.FileSystem
    if (isDeepStrictEqual(doc, loaded.doc)) {
      yield* Output.line(`Nothing of the setup was left in ${path}; the file is unchanged.`)
    } else {
      const backup = yield* cli(ConfigFile.backup(path))
      if (record.value.createdFile && isDeepStrictEqual(doc, {})) {
        yield* fs.remove(path).pipe(
          Effect.mapError((e) => new CliError({ message: `${path}: cannot delete it (${e.message})` }))
        )
        yield* Output.line(`Deleted ${path} (setup had created it). Backup: ${backup}`)
      } else {
        yield* cli(ConfigFile.writeAtomic(path, ConfigFile.serialize(doc)))
        yield* Output.line(`Removed what effect-aios setup added from ${path}. Backup: ${backup}`)
      }
    }
    for (const k of kept) yield* Output.errorLine(`kept ${k}`)
    yield* cli(ConfigFile.writeRecord(path, undefined))
    yield* Output.line("Next: openclaw gateway restart")
  })).pipe(Command.withDescription("Take out exactly what `openclaw setup` added, nothing else"))

/**
 * @since 0.1.0
 */
export const openclaw = Command.make("openclaw").pipe(
  Command.withDescription("Install the aios provider into an OpenClaw config, or take it out"),
  Command.withSubcommands([setup, remove])
)
