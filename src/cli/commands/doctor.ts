/**
 * `effect-aios doctor`: checks, in order, everything between OpenClaw and the kernel, prints ✓ or ✗ for each
 * with the command that fixes it, and exits 0 only when every check passes.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Path from "node:path"
import * as AiosConfig from "../../AiosConfig.js"
import { Backend, type Model } from "../../Backend.js"
import type { BackendError } from "../../BackendError.js"
import * as KernelPool from "../../KernelPool.js"
import * as OpenClawConfig from "../../openclaw/config.js"
import { AUTH_ENV_VAR, PROVIDER_ID } from "../../openclaw/models.js"
import * as SharedState from "../../SharedState.js"
import { CliError } from "../CliError.js"
import * as ConfigFile from "../ConfigFile.js"
import * as Output from "../Output.js"
import * as PluginDir from "../PluginDir.js"
import { configOption, kernelConfig, oneKernel, PROBE_TIMEOUT_MS, stack, toCliError, urlOption } from "./shared.js"

/**
 * One check's outcome.
 *
 * @since 0.1.0
 */
export interface Check {
  readonly name: "kernel" | "models" | "config" | "plugin" | "auth" | "model refs"
  readonly ok: boolean
  /** What was found, or what is wrong. */
  readonly details: ReadonlyArray<string>
  /** The command (or edit) that fixes it. */
  readonly fix?: string | undefined
}

const pass = (name: Check["name"], ...details: Array<string>): Check => ({ name, ok: true, details })
const fail = (name: Check["name"], fix: string | undefined, ...details: Array<string>): Check => ({ name, ok: false, details, fix })

/** A `kernels` list is configured: the checks cover each kernel. */
const pooled = (values: AiosConfig.AiosConfigValues): boolean => values.kernels !== undefined && values.kernels.length > 0

/** Every kernel the configuration names. */
const kernelUrls = (values: AiosConfig.AiosConfigValues): ReadonlyArray<string> =>
  values.kernels !== undefined && values.kernels.length > 0 ? values.kernels : [values.baseUrl]

/** What the kernel checks found: the kernel and models checks, and the model names when there is a list. */
interface KernelFindings {
  readonly checks: readonly [Check, Check]
  readonly names: ReadonlyArray<string> | undefined
}

const modelsCheck = (
  list: Either.Either<ReadonlyArray<Model>, BackendError>,
  where: string,
  kernelFailedAlike: boolean
): Check =>
  Either.isLeft(list)
    ? kernelFailedAlike
      ? fail("models", undefined, "skipped: see the kernel check")
      : fail("models", "see the kernel check", toCliError(list.left).message)
    : list.right.length === 0
    ? fail("models", "configure at least one model in the kernel's config.yaml", `${where} no models`)
    : pass("models", `${list.right.length} model(s): ${list.right.map((m) => m.name).join(", ")}`)

const namesOf = (list: Either.Either<ReadonlyArray<Model>, BackendError>) =>
  Either.isRight(list) && list.right.length > 0 ? list.right.map((m) => m.name) : undefined

/** One kernel: its `/status` and its model list. */
const kernelChecks = (values: AiosConfig.AiosConfigValues, notes: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const url = values.baseUrl
    const [status, list] = yield* Effect.flatMap(Backend, (k) => Effect.all([Effect.either(k.status), Effect.either(k.listModels)])).pipe(
      Effect.provide(stack(values))
    )
    const kernel = Either.isLeft(status)
      ? fail(
        "kernel",
        `start the kernel at ${url}, pass --url, or run a demo kernel: effect-aios kernel serve`,
        toCliError(status.left).message
      )
      : !status.right.ok
      ? fail(
        "kernel",
        "check the kernel's logs and config.yaml",
        `${url}/status answered "${status.right.message}"${
          status.right.inactiveComponents.length > 0 ? `; inactive: ${status.right.inactiveComponents.join(", ")}` : ""
        }`
      )
      : pass("kernel", `${url} is up (${status.right.message})`, ...notes)
    const sameFailure = Either.isLeft(status) && Either.isLeft(list) && status.left._tag === list.left._tag
    return {
      checks: [kernel, modelsCheck(list, `the kernel at ${url} serves`, sameFailure)],
      names: namesOf(list)
    } satisfies KernelFindings
  })

/** A pool: every kernel's `/status` (✓ or ✗ with its URL), and the union of their model lists. */
const poolChecks = (values: AiosConfig.AiosConfigValues) =>
  Effect.gen(function*() {
    const [checked, list] = yield* Effect.flatMap(KernelPool.KernelPool, (pool) =>
      Effect.all([pool.check, Effect.either(pool.backend.listModels)])).pipe(
        Effect.provide(KernelPool.layer.pipe(
          Layer.provide(Layer.mergeAll(Layer.succeed(AiosConfig.AiosConfig, values), SharedState.layerMemory, NodeHttpClient.layerUndici))
        )),
        // The pool's warnings (a kernel ejected) would repeat what the check lines say.
        Logger.withMinimumLogLevel(LogLevel.Error)
      )
    const lines = checked.map(({ status, url }) =>
      Either.isLeft(status)
        ? `✗ ${url}: ${toCliError(status.left).message}`
        : status.right.ok
        ? `✓ ${url} is up (${status.right.message})`
        : `✗ ${url}/status answered "${status.right.message}"${
          status.right.inactiveComponents.length > 0 ? `; inactive: ${status.right.inactiveComponents.join(", ")}` : ""
        }`
    )
    const down = checked.filter((c) => Either.isLeft(c.status) || !c.status.right.ok).map((c) => c.url)
    const summary = `${checked.length - down.length} of ${checked.length} kernels up`
    const kernel = down.length === 0
      ? pass("kernel", summary, ...lines)
      : fail("kernel", `start the kernel(s) at ${down.join(", ")}, or remove them from kernels`, summary, ...lines)
    return {
      checks: [kernel, modelsCheck(list, "the kernels serve", down.length === checked.length && Either.isLeft(list))],
      names: namesOf(list)
    } satisfies KernelFindings
  })

/**
 * Runs every check. Never fails: a check that cannot run (no config, kernel down) fails and says why.
 *
 * @since 0.1.0
 */
export const checks = (args: { readonly config: Option.Option<string>; readonly url: Option.Option<string> }) =>
  Effect.gen(function*() {
    const out: Array<Check> = []
    const flags = (withUrl: boolean) =>
      `${Option.isSome(args.config) ? ` --config ${args.config.value}` : ""}${withUrl && Option.isSome(args.url) ? ` --url ${args.url.value}` : ""}`
    const setupCommand = `effect-aios openclaw setup${flags(true)}`

    // The config is read first (the kernel URL may come from it) but reported third, in the documented order.
    const loaded = yield* Effect.either(
      ConfigFile.resolvePath(args.config).pipe(Effect.flatMap(ConfigFile.load))
    )
    const doc = Either.isRight(loaded) && loaded.right.exists ? loaded.right.doc : undefined
    const pluginConfig = OpenClawConfig.getAt(doc, ["plugins", "entries", PROVIDER_ID, "config"])
    const base = (OpenClawConfig.isObject(pluginConfig) ? pluginConfig : {}) as AiosConfig.AiosConfigInput
    // The kernel the gateway's plugin will use: --url, else its configured baseUrl, else the default. The plugin
    // does not read AIOS_URL, so that variable counts only when there is no OpenClaw config yet.
    const configured = typeof base.baseUrl === "string" ? Option.some(base.baseUrl) : Option.none<string>()
    const target = Option.orElse(args.url, () =>
      doc === undefined ? Option.none() : Option.orElse(configured, () => Option.some(AiosConfig.defaults.baseUrl)))
    const values = yield* Effect.either(
      kernelConfig(target, { ...base, requestTimeoutMs: base.requestTimeoutMs ?? PROBE_TIMEOUT_MS }).pipe(
        Effect.map((v) => (Option.isSome(args.url) ? oneKernel(v) : v))
      )
    )
    const envUrl = yield* Effect.orElseSucceed(
      Config.option(Config.string("AIOS_URL")).pipe(Config.map(Option.map((u) => u.trim().replace(/\/+$/, "")))),
      () => Option.none<string>()
    )
    const ignoredEnv = Option.isNone(args.url) && doc !== undefined && Either.isRight(values) &&
        Option.isSome(envUrl) && envUrl.value !== values.right.baseUrl
      ? [`note: the plugin does not read AIOS_URL (${Option.getOrElse(envUrl, () => "")}); \`${setupCommand}\` writes it into the config`]
      : []

    // 1. kernel /status, 2. model list
    let names: ReadonlyArray<string> | undefined
    if (Either.isLeft(values)) {
      out.push(fail("kernel", "fix the configuration named above", values.left.message))
      out.push(fail("models", undefined, "skipped: no kernel configuration"))
    } else {
      const found = yield* (pooled(values.right) ? poolChecks(values.right) : kernelChecks(values.right, ignoredEnv))
      out.push(...found.checks)
      names = found.names
    }

    // 3. config found
    if (Either.isLeft(loaded)) {
      out.push(fail("config", "fix the file, or pass --config", toCliError(loaded.left).message))
    } else if (doc === undefined) {
      out.push(fail("config", setupCommand, `no OpenClaw config at ${loaded.right.path}`))
    } else {
      out.push(pass("config", loaded.right.path))
    }
    const configPath = Either.isRight(loaded) ? loaded.right.path : "the config"

    if (doc === undefined) {
      for (const name of ["plugin", "auth", "model refs"] as const) out.push(fail(name, undefined, "skipped: no config"))
      return out
    }

    // 4. plugin installed and enabled
    const home = yield* Effect.orElseSucceed(ConfigFile.userHome, () => "")
    const problems: Array<string> = []
    let fix: string | undefined = setupCommand
    const paths = OpenClawConfig.getAt(doc, ["plugins", "load", "paths"])
    const dirs = Array.isArray(paths) ? paths.filter((p): p is string => typeof p === "string") : []
    const found = yield* Effect.forEach(dirs, (dir) =>
      PluginDir.read(Path.resolve(OpenClawConfig.expandHome(dir, home === "" ? undefined : home))))
    const plugin = found.flatMap((p) => (Option.isSome(p) && p.value.id === PROVIDER_ID ? [p.value] : []))[0]
    if (plugin === undefined) {
      problems.push("no folder in plugins.load.paths holds the aios plugin")
    } else {
      const missing = PluginDir.missingEntries(plugin)
      if (missing.length > 0) {
        problems.push(`the plugin entry ${missing.join(", ")} is missing in ${plugin.dir}`)
        fix = `cd ${plugin.dir} && npm run build`
      }
    }
    if (OpenClawConfig.getAt(doc, ["plugins", "entries", PROVIDER_ID, "enabled"]) !== true) {
      problems.push("plugins.entries.aios.enabled is not true")
      fix = setupCommand
    }
    const allow = OpenClawConfig.pluginAllowList(doc)
    if (allow !== undefined && !allow.includes(PROVIDER_ID)) {
      problems.push("plugins.allow does not list \"aios\"")
      fix = setupCommand
    }
    if (OpenClawConfig.getAt(doc, ["plugins", "enabled"]) === false) {
      problems.push("plugins.enabled is false (no plugin loads)")
      fix = `set plugins.enabled to true in ${configPath}`
    }
    const deny = OpenClawConfig.getAt(doc, ["plugins", "deny"])
    if (Array.isArray(deny) && deny.includes(PROVIDER_ID)) {
      problems.push("plugins.deny lists \"aios\"")
      fix = `remove "aios" from plugins.deny in ${configPath}`
    }
    const decoded = AiosConfig.decode(pluginConfig ?? {})
    if (Either.isLeft(decoded)) {
      problems.push(`plugins.entries.aios.config: ${decoded.left.message}`)
      fix = `fix plugins.entries.aios.config in ${configPath}`
    }
    out.push(
      problems.length === 0
        ? pass("plugin", `found in ${plugin?.dir ?? "?"}, enabled`)
        : fail("plugin", fix, ...problems)
    )

    // 5. auth for agent turns
    const envKey = yield* Effect.orElseSucceed(
      Config.option(Config.string(AUTH_ENV_VAR)).pipe(Config.map(Option.filter((s) => s.trim() !== ""))),
      () => Option.none<string>()
    )
    const authProblem = OpenClawConfig.providerAuthProblem(doc)
    if (Option.isSome(envKey)) {
      out.push(pass("auth", `${AUTH_ENV_VAR} is set (the gateway needs it in its environment too)`))
    } else if (authProblem === undefined) {
      out.push(pass("auth", "models.providers.aios is a loopback entry: OpenClaw grants its local key"))
    } else {
      const remote = Either.isRight(values) && kernelUrls(values.right).some((u) => !OpenClawConfig.isLoopbackUrl(u))
      out.push(fail(
        "auth",
        remote ? `set ${AUTH_ENV_VAR}=local in the gateway's environment` : setupCommand,
        `${AUTH_ENV_VAR} is not set and ${authProblem}`
      ))
    }

    // 6. aios/<model> entries
    if (names === undefined) {
      out.push(fail("model refs", undefined, "skipped: no model list from the kernel"))
    } else {
      const restriction = OpenClawConfig.modelRestriction(doc)
      const refProblems: Array<string> = []
      const notAllowed = names.filter((n) => !OpenClawConfig.allowsModel(restriction, `${PROVIDER_ID}/${n}`))
      if (notAllowed.length > 0) {
        const where = restriction._tag === "Policy" ? "agents.defaults.modelPolicy.allow" : "agents.defaults.models"
        refProblems.push(`${where} restricts models and lacks ${notAllowed.map((n) => `aios/${n}`).join(", ")}`)
      }
      const rows = OpenClawConfig.getAt(doc, ["models", "providers", PROVIDER_ID, "models"])
      if (Array.isArray(rows)) {
        const ids = new Set(rows.map((r) => OpenClawConfig.getAt(r, ["id"])))
        const unlisted = names.filter((n) => !ids.has(n))
        if (unlisted.length > 0) refProblems.push(`models.providers.aios.models lacks ${unlisted.join(", ")}`)
      }
      out.push(
        refProblems.length === 0
          ? pass("model refs", `selectable: ${names.map((n) => `aios/${n}`).join(", ")}`)
          : fail("model refs", setupCommand, ...refProblems)
      )
    }
    return out
  })

const render = (check: Check): string => {
  const head = `${check.ok ? "✓" : "✗"} ${check.name.padEnd(10)} `
  const indent = " ".repeat(head.length)
  const lines = check.details.map((d, i) => `${i === 0 ? head : indent}${d}`)
  if (!check.ok && check.fix !== undefined) lines.push(`${indent}fix: ${check.fix}`)
  return lines.join("\n")
}

/**
 * @since 0.1.0
 */
export const doctor = Command.make("doctor", { config: configOption, url: urlOption }, (args) =>
  Effect.gen(function*() {
    const results = yield* checks(args)
    for (const check of results) yield* Output.line(render(check))
    const failed = results.filter((c) => !c.ok).length
    if (failed > 0) {
      yield* Output.line(`${failed} of ${results.length} checks failed.`)
      return yield* new CliError({ message: "", silent: true })
    }
    yield* Output.line("All checks passed. Restart the gateway if you changed anything: openclaw gateway restart")
  })).pipe(Command.withDescription("Check the kernel, the OpenClaw config and the plugin, and say how to fix what is wrong"))
