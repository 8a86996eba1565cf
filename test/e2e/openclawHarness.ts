/**
 * Harness for end-to-end tests in a real OpenClaw: installs a pinned `openclaw` once into
 * `.e2e-cache/`, makes throwaway OpenClaw homes that stay offline, loads a local plugin and runs
 * headless agent turns. No test cases here; `test/e2e/*.test.ts` use it.
 *
 * Findings behind every choice: /work/notes/openclaw-findings.md.
 */
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The OpenClaw release the e2e tests are pinned to. */
export const OPENCLAW_VERSION = "2026.9.6"

const projectRoot = fileURLToPath(new URL("../../", import.meta.url))

/**
 * The folder holding the OpenClaw install and Node's compile cache: outside the project, because the project
 * folder is the plugin folder OpenClaw installs from, and it must not find a whole OpenClaw inside it.
 * `EFFECT_AIOS_E2E_CACHE` overrides it.
 */
export const cacheRoot = process.env["EFFECT_AIOS_E2E_CACHE"] ?? path.join(os.tmpdir(), "effect-aios-e2e")

const INSTALL_MARKER = ".e2e-install-complete.json"
const INSTALL_TIMEOUT_MS = 15 * 60_000
const LOCK_STALE_MS = 20 * 60_000

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/** Outcome of one bounded child process. */
export interface ProcessResult {
  /** Exit code; `null` when the process was ended by a signal. */
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** True when the harness timeout fired and the process group was killed. */
  readonly timedOut: boolean
  readonly durationMs: number
}

/** Options of {@link runProcess}. */
export interface ProcessOptions {
  readonly env: NodeJS.ProcessEnv
  readonly cwd?: string | undefined
  readonly timeoutMs: number
  /** Time between SIGTERM and SIGKILL once the timeout fired. */
  readonly graceMs?: number | undefined
}

const killGroup = (pid: number | undefined, signal: NodeJS.Signals): void => {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: the group is already gone.
  }
}

// Groups still running; killed if the test process exits first (e.g. a test timeout tears the worker down).
const liveGroups = new Set<number>()
let exitHookInstalled = false
const trackGroup = (pid: number | undefined): void => {
  if (pid === undefined) return
  liveGroups.add(pid)
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once("exit", () => {
      for (const group of liveGroups) killGroup(group, "SIGKILL")
    })
  }
}

/**
 * Runs a command in its own process group, bounded by `timeoutMs`: on timeout the whole group gets
 * SIGTERM, then SIGKILL after `graceMs`. When the leader exits, stragglers in its group are killed
 * too (OpenClaw re-spawns itself once, and tools may start children), so nothing outlives a call.
 * Rejects only when the command cannot be started at all.
 */
export const runProcess = (command: string, args: ReadonlyArray<string>, options: ProcessOptions): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    trackGroup(child.pid)
    let stdout = ""
    let stderr = ""
    let timedOut = false
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
    let settled = false
    const timers: Array<NodeJS.Timeout> = []
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    const finish = () => {
      if (settled || exit === undefined) return
      settled = true
      if (child.pid !== undefined) liveGroups.delete(child.pid)
      for (const t of timers) clearTimeout(t)
      resolve({ ...exit, stdout, stderr, timedOut, durationMs: Date.now() - started })
    }
    child.once("error", (error) => {
      if (settled) return
      settled = true
      for (const t of timers) clearTimeout(t)
      killGroup(child.pid, "SIGKILL")
      if (child.pid !== undefined) liveGroups.delete(child.pid)
      reject(new Error(`Cannot start ${command}: ${error.message}`, { cause: error }))
    })
    child.once("exit", (code, signal) => {
      exit = { code, signal }
      killGroup(child.pid, "SIGKILL")
      // A grandchild that left the group could hold the pipes open; do not wait for it forever.
      timers.push(
        setTimeout(() => {
          child.stdout.destroy()
          child.stderr.destroy()
          finish()
        }, 2_000)
      )
    })
    child.once("close", finish)
    timers.push(
      setTimeout(() => {
        timedOut = true
        killGroup(child.pid, "SIGTERM")
        timers.push(setTimeout(() => killGroup(child.pid, "SIGKILL"), options.graceMs ?? 3_000))
      }, options.timeoutMs)
    )
  })

// ---------------------------------------------------------------------------------------------
// Installing OpenClaw
// ---------------------------------------------------------------------------------------------

/** A usable OpenClaw install: run it as `nodeBin bin ...args`. */
export interface OpenClawInstall {
  /** `openclaw.mjs` of the installed package. */
  readonly bin: string
  /** A Node that satisfies OpenClaw's engines (>=24.16 <25 or >=26.1). */
  readonly nodeBin: string
  /** The isolated install folder, `.e2e-cache/openclaw-<version>`. */
  readonly dir: string
  readonly version: string
}

const nodeSatisfiesOpenClaw = (version: string): boolean => {
  const [major = 0, minor = 0] = version.replace(/^v/, "").split(".").map(Number)
  return (major === 24 && minor >= 16) || (major === 26 && minor >= 1) || major > 26
}

/** The current Node when it can run OpenClaw, else the project's Node 24 devDependency. */
export const resolveNodeBin = (): string => {
  if (nodeSatisfiesOpenClaw(process.versions.node)) return process.execPath
  const candidate = path.join(projectRoot, "node_modules", "node", "bin", "node")
  if (existsSync(candidate)) return candidate
  throw new Error(
    `OpenClaw needs Node >=24.16 <25 or >=26.1, this is ${process.version}, and ${candidate} is missing. ` +
      "Run `npm install` in the project (the `node` devDependency provides Node 24)."
  )
}

/** PATH with the chosen Node first, so `#!/usr/bin/env node` scripts (npm, OpenClaw helpers) use it. */
const pathWithNode = (nodeBin: string): string =>
  [path.dirname(nodeBin), process.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"].join(path.delimiter)

const readJson = (file: string): unknown => {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as unknown
  } catch {
    return undefined
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const installIsIntact = (dir: string, version: string): boolean => {
  const marker = readJson(path.join(dir, INSTALL_MARKER))
  const pkg = readJson(path.join(dir, "node_modules", "openclaw", "package.json"))
  return (
    isRecord(marker) && marker["version"] === version &&
    isRecord(pkg) && pkg["version"] === version &&
    existsSync(path.join(dir, "node_modules", "openclaw", "openclaw.mjs")) &&
    existsSync(path.join(dir, "node_modules", "@openclaw", "ai", "package.json")) &&
    // A half-finished lifecycle means the install was never smoke-tested.
    !existsSync(path.join(dir, "node_modules", "openclaw", ".openclaw-lifecycle-pending"))
  )
}

/** Cross-process mutex on a directory, so parallel test workers install only once. */
const withLock = async <A>(lockDir: string, body: () => Promise<A>): Promise<A> => {
  const deadline = Date.now() + INSTALL_TIMEOUT_MS + 60_000
  for (;;) {
    try {
      await fs.mkdir(lockDir)
      break
    } catch (error) {
      if (!(isRecord(error) && error["code"] === "EEXIST")) throw error
      const stat = await fs.stat(lockDir).catch(() => undefined)
      if (stat !== undefined && Date.now() - stat.mtimeMs > LOCK_STALE_MS) {
        await fs.rm(lockDir, { recursive: true, force: true })
        continue
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the install lock ${lockDir}`)
      await new Promise((r) => setTimeout(r, 1_000))
    }
  }
  try {
    return await body()
  } finally {
    await fs.rm(lockDir, { recursive: true, force: true })
  }
}

/** npm, run with the chosen Node (npm's own launcher would pick the machine's default Node). */
const npmCommand = (nodeBin: string): { readonly command: string; readonly args: ReadonlyArray<string> } => {
  const execPath = process.env["npm_execpath"]
  if (execPath !== undefined && /npm-cli\.c?js$/.test(execPath) && existsSync(execPath)) {
    return { command: nodeBin, args: [execPath] }
  }
  return { command: "npm", args: [] }
}

const installOpenClaw = async (version: string, nodeBin: string, dir: string): Promise<void> => {
  await fs.rm(dir, { recursive: true, force: true })
  await fs.mkdir(dir, { recursive: true })
  await fs.writeFile(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "openclaw-e2e-cache", private: true, dependencies: { openclaw: version } }, null, 2)
  )
  const env = { ...process.env, PATH: pathWithNode(nodeBin), npm_config_update_notifier: "false" }
  const npm = npmCommand(nodeBin)
  // --ignore-scripts: OpenClaw's own launcher finishes its package lifecycle on first run (below),
  // and no dependency's install script is needed for headless agent turns.
  const installed = await runProcess(
    npm.command,
    [...npm.args, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
    { cwd: dir, env, timeoutMs: INSTALL_TIMEOUT_MS }
  )
  if (installed.code !== 0) {
    throw new Error(
      `npm install openclaw@${version} failed (${installed.timedOut ? "timed out" : `exit ${installed.code}`}):\n` +
        tail(installed.stderr || installed.stdout)
    )
  }
  // First run completes the lifecycle (removes .openclaw-lifecycle-pending) and proves the pair works.
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), "openclaw-e2e-smoke-"))
  try {
    const bin = path.join(dir, "node_modules", "openclaw", "openclaw.mjs")
    const smoke = await runProcess(nodeBin, [bin, "--version"], {
      cwd: scratch,
      env: offlineEnv({ nodeBin, home: scratch, stateDir: path.join(scratch, ".openclaw"), tmp: scratch }),
      timeoutMs: 120_000
    })
    if (smoke.code !== 0 || !smoke.stdout.includes(version)) {
      throw new Error(`openclaw@${version} does not start under ${nodeBin}:\n${tail(smoke.stderr || smoke.stdout)}`)
    }
  } finally {
    await fs.rm(scratch, { recursive: true, force: true })
  }
  await fs.writeFile(
    path.join(dir, INSTALL_MARKER),
    JSON.stringify({ version, node: nodeBin, installedAt: new Date().toISOString() }, null, 2)
  )
}

const installs = new Map<string, Promise<OpenClawInstall>>()

/**
 * Installs `openclaw@version` once into `.e2e-cache/openclaw-<version>` (about 650 MB, 30–60 s on a
 * warm npm cache), reusing it while intact. Safe to call from parallel workers.
 */
export const ensureOpenClaw = (version: string = OPENCLAW_VERSION): Promise<OpenClawInstall> => {
  const existing = installs.get(version)
  if (existing !== undefined) return existing
  const pending = (async () => {
    const nodeBin = resolveNodeBin()
    const dir = path.join(cacheRoot, `openclaw-${version}`)
    const install: OpenClawInstall = { bin: path.join(dir, "node_modules", "openclaw", "openclaw.mjs"), nodeBin, dir, version }
    if (installIsIntact(dir, version)) return install
    await fs.mkdir(cacheRoot, { recursive: true })
    await withLock(path.join(cacheRoot, `openclaw-${version}.lock`), async () => {
      if (!installIsIntact(dir, version)) await installOpenClaw(version, nodeBin, dir)
    })
    return install
  })()
  installs.set(version, pending)
  pending.catch(() => installs.delete(version))
  return pending
}

// ---------------------------------------------------------------------------------------------
// Homes
// ---------------------------------------------------------------------------------------------

/** Variables passed through from the test process; everything else is left out on purpose. */
const PASSTHROUGH = ["LANG", "LC_ALL", "TZ", "USER", "LOGNAME"] as const

/**
 * The environment of every OpenClaw command: an isolated home, no update checks, telemetry,
 * mDNS or helper downloads, no colour codes, and none of the caller's provider keys.
 */
const offlineEnv = (p: {
  readonly nodeBin: string
  readonly home: string
  readonly stateDir: string
  readonly tmp: string
  readonly extra?: Readonly<Record<string, string>> | undefined
}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const key of PASSTHROUGH) {
    const value = process.env[key]
    if (value !== undefined) env[key] = value
  }
  return {
    ...env,
    PATH: pathWithNode(p.nodeBin),
    SHELL: "/bin/sh",
    HOME: p.home,
    OPENCLAW_HOME: p.home,
    OPENCLAW_STATE_DIR: p.stateDir,
    OPENCLAW_CONFIG_PATH: path.join(p.stateDir, "openclaw.json"),
    // `agent exec` puts its throwaway state under the temp dir; keep it inside the home.
    TMPDIR: p.tmp,
    // TMPDIR moves Node's compile cache too; share one so start-up stays warm across homes.
    NODE_COMPILE_CACHE: path.join(cacheRoot, "node-compile-cache"),
    CI: "1", // OpenClaw sends no update check or telemetry when CI is set
    DO_NOT_TRACK: "1",
    OPENCLAW_NO_AUTO_UPDATE: "1",
    OPENCLAW_OFFLINE: "1",
    OPENCLAW_DISABLE_BONJOUR: "1",
    OPENCLAW_SKIP_CHANNELS: "1",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    TERM: "dumb",
    ...p.extra
  }
}

/** Result of one OpenClaw command. `json` is stdout parsed as JSON when it is JSON. */
export interface RunResult extends ProcessResult {
  readonly json?: unknown
}

/** Options of {@link OpenClawHome.run}. */
export interface RunOptions {
  /** Hard bound; the whole process group is killed when it passes. Default 120 s. */
  readonly timeoutMs?: number | undefined
  /** Working directory; default the home's workspace. */
  readonly cwd?: string | undefined
  /** Extra environment for this command only. */
  readonly env?: Readonly<Record<string, string>> | undefined
}

/** A throwaway OpenClaw home. */
export interface OpenClawHome {
  readonly install: OpenClawInstall
  /** `HOME` and `OPENCLAW_HOME`. */
  readonly home: string
  /** `OPENCLAW_STATE_DIR` (`<home>/.openclaw`). */
  readonly stateDir: string
  /** `OPENCLAW_CONFIG_PATH` (`<stateDir>/openclaw.json`). */
  readonly configPath: string
  /** A folder for `--cwd` (and the default agent workspace, via `OPENCLAW_WORKSPACE_DIR`). */
  readonly workspace: string
  /** OpenClaw's log for this home (`logging.file`): JSON lines, each with its time; see {@link readLog}. */
  readonly logFile: string
  /** The environment every command gets. */
  readonly env: NodeJS.ProcessEnv
  /** Runs `openclaw ...args`, bounded. Never rejects for a non-zero exit; inspect `code`. */
  readonly run: (args: ReadonlyArray<string>, options?: RunOptions) => Promise<RunResult>
  /** Replaces the config file. */
  readonly writeConfig: (config: Readonly<Record<string, unknown>>) => Promise<void>
  /** The current config file (OpenClaw writes plain JSON), `{}` when absent. */
  readonly readConfig: () => Promise<Record<string, unknown>>
  /** Read, change, write the config. */
  readonly updateConfig: (f: (config: Record<string, unknown>) => Record<string, unknown>) => Promise<void>
  /** Removes the whole home. */
  readonly cleanup: () => Promise<void>
}

/** Options of {@link makeOpenClawHome}. */
export interface HomeOptions {
  /** Extra environment for every command, e.g. a provider key declared in the plugin manifest. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Initial config, merged over `{ update: { checkOnStart: false }, logging: { file: <home>/openclaw.log } }`. */
  readonly config?: Readonly<Record<string, unknown>> | undefined
  /** An install to use instead of `ensureOpenClaw()`. */
  readonly install?: OpenClawInstall | undefined
}

/** Parses `--json` output: the whole stdout, else from the first line that opens an object. */
export const parseJsonOutput = (stdout: string): unknown => {
  const text = stdout.trim()
  if (text === "") return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    const start = text.search(/^\{/m)
    if (start < 0) return undefined
    try {
      return JSON.parse(text.slice(start)) as unknown
    } catch {
      return undefined
    }
  }
}

/** Makes a temporary OpenClaw home (HOME, state dir, config, workspace) with an offline environment. */
export const makeOpenClawHome = async (options: HomeOptions = {}): Promise<OpenClawHome> => {
  const install = options.install ?? (await ensureOpenClaw())
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "openclaw-e2e-"))
  const stateDir = path.join(home, ".openclaw")
  const configPath = path.join(stateDir, "openclaw.json")
  const workspace = path.join(home, "workspace")
  const tmp = path.join(home, "tmp")
  const logFile = path.join(home, "openclaw.log")
  await Promise.all([stateDir, workspace, tmp].map((d) => fs.mkdir(d, { recursive: true })))
  const env = offlineEnv({
    nodeBin: install.nodeBin,
    home,
    stateDir,
    tmp,
    extra: { OPENCLAW_WORKSPACE_DIR: workspace, ...options.env }
  })

  const writeConfig = (config: Readonly<Record<string, unknown>>) =>
    fs.writeFile(configPath, JSON.stringify(config, null, 2) + "\n")
  const readConfig = async (): Promise<Record<string, unknown>> => {
    const text = await fs.readFile(configPath, "utf8").catch(() => undefined)
    if (text === undefined) return {}
    const parsed: unknown = JSON.parse(text)
    if (!isRecord(parsed)) throw new Error(`${configPath} does not hold a JSON object`)
    return parsed
  }
  const updateConfig = async (f: (config: Record<string, unknown>) => Record<string, unknown>) =>
    writeConfig(f(await readConfig()))

  const run = async (args: ReadonlyArray<string>, runOptions: RunOptions = {}): Promise<RunResult> => {
    const result = await runProcess(install.nodeBin, [install.bin, ...args], {
      cwd: runOptions.cwd ?? workspace,
      env: runOptions.env === undefined ? env : { ...env, ...runOptions.env },
      timeoutMs: runOptions.timeoutMs ?? 120_000
    })
    const json = parseJsonOutput(result.stdout)
    return json === undefined ? result : { ...result, json }
  }

  // A log of this home's own (JSON lines with timestamps), instead of the machine-wide one in /tmp/openclaw.
  await writeConfig(deepMerge({ update: { checkOnStart: false }, logging: { file: logFile } }, options.config ?? {}))

  return {
    install,
    home,
    stateDir,
    configPath,
    workspace,
    logFile,
    env,
    run,
    writeConfig,
    readConfig,
    updateConfig,
    cleanup: () => fs.rm(home, { recursive: true, force: true, maxRetries: 3 })
  }
}

/** Merges plain objects key by key; arrays and other values from `b` replace those in `a`. */
export const deepMerge = (
  a: Readonly<Record<string, unknown>>,
  b: Readonly<Record<string, unknown>>
): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...a }
  for (const [key, value] of Object.entries(b)) {
    const current = out[key]
    out[key] = isRecord(current) && isRecord(value) ? deepMerge(current, value) : value
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Plugins and providers
// ---------------------------------------------------------------------------------------------

/** Options of {@link installPlugin}. */
export interface InstallPluginOptions {
  /**
   * `"cli"` (default): `openclaw plugins install -l <dir> --force --accept-capabilities`, the user's
   * path, which also validates the manifest (~4–8 s). `"config"`: write `plugins.load.paths`,
   * `plugins.entries.<id>.enabled` and `plugins.allow` directly (no process, no validation).
   */
  readonly via?: "cli" | "config" | undefined
  /** Written to `plugins.entries.<id>.config`. */
  readonly config?: Readonly<Record<string, unknown>> | undefined
  readonly timeoutMs?: number | undefined
}

const readManifestId = async (pluginDir: string): Promise<string> => {
  const file = path.join(pluginDir, "openclaw.plugin.json")
  const manifest: unknown = JSON.parse(await fs.readFile(file, "utf8"))
  const id = isRecord(manifest) ? manifest["id"] : undefined
  if (typeof id !== "string" || id === "") throw new Error(`${file} has no "id"`)
  return id
}

const withPluginEntry = (
  config: Record<string, unknown>,
  id: string,
  patch: Readonly<Record<string, unknown>>
): Record<string, unknown> => deepMerge(config, { plugins: { entries: { [id]: patch } } })

/**
 * Writes a small plugin of the tests' own into `<home>/plugins/<id>`: its entry, manifest and a `package.json`
 * naming the entry (and the providers, when it has some). Returns the folder; loading it is the caller's.
 */
export const writeLocalPlugin = async (
  home: OpenClawHome,
  plugin: { readonly id: string; readonly entry: string; readonly manifest: object; readonly providers?: ReadonlyArray<string> }
): Promise<string> => {
  const dir = path.join(home.home, "plugins", plugin.id)
  await fs.mkdir(dir, { recursive: true })
  await fs.writeFile(path.join(dir, "index.js"), plugin.entry)
  await fs.writeFile(path.join(dir, "openclaw.plugin.json"), JSON.stringify(plugin.manifest, null, 2))
  const openclaw = { extensions: ["./index.js"], ...(plugin.providers !== undefined ? { providers: plugin.providers } : {}) }
  await fs.writeFile(
    path.join(dir, "package.json"),
    JSON.stringify({ name: plugin.id, version: "0.0.0", type: "module", openclaw }, null, 2)
  )
  return dir
}

/**
 * Loads the plugin folder `pluginDir` (with `package.json` `openclaw.extensions` and an
 * `openclaw.plugin.json`) into the home. Returns the manifest id. Throws with OpenClaw's output
 * when the install is refused (e.g. "plugin manifest requires configSchema").
 */
export const installPlugin = async (
  home: OpenClawHome,
  pluginDir: string,
  options: InstallPluginOptions = {}
): Promise<{ readonly id: string }> => {
  const dir = path.resolve(pluginDir)
  const id = await readManifestId(dir)
  if ((options.via ?? "cli") === "cli") {
    const r = await home.run(["plugins", "install", "-l", dir, "--force", "--accept-capabilities"], {
      timeoutMs: options.timeoutMs ?? 120_000
    })
    if (r.code !== 0) {
      throw new Error(
        `openclaw plugins install -l ${dir} failed (${r.timedOut ? "timed out" : `exit ${r.code}`}):\n` +
          tail(`${r.stdout}\n${r.stderr}`)
      )
    }
  } else {
    await home.updateConfig((config) => {
      const plugins = isRecord(config["plugins"]) ? config["plugins"] : {}
      const load = isRecord(plugins["load"]) ? plugins["load"] : {}
      const paths = Array.isArray(load["paths"]) ? load["paths"] : []
      const allow = Array.isArray(plugins["allow"]) ? plugins["allow"] : []
      return withPluginEntry(
        deepMerge(config, {
          plugins: {
            load: { paths: paths.includes(dir) ? paths : [...paths, dir] },
            allow: allow.includes(id) ? allow : [...allow, id]
          }
        }),
        id,
        { enabled: true }
      )
    })
  }
  if (options.config !== undefined) {
    const pluginConfig = options.config
    await home.updateConfig((config) => withPluginEntry(config, id, { config: pluginConfig }))
  }
  return { id }
}

/** What {@link inspectPlugin} found. */
export interface PluginInspection {
  /** `"loaded"` when the entry imported and `register` ran; `"error"` otherwise. */
  readonly status?: string
  /** The load error, e.g. `SyntaxError: …`, or an error from `register`. */
  readonly error?: string
  readonly providerIds: ReadonlyArray<string>
  /** `diagnostics[].message` of the inspection. */
  readonly diagnostics: ReadonlyArray<string>
  readonly raw: unknown
}

/**
 * `openclaw plugins inspect <id> --json --runtime` (~8 s): actually imports the plugin and runs
 * `register`. `plugins install -l` does neither, so a plugin that cannot load installs fine and only
 * fails at the turn (as `fallback_exhausted`); check `status === "loaded"` first.
 */
export const inspectPlugin = async (
  home: OpenClawHome,
  id: string,
  options: { readonly timeoutMs?: number | undefined } = {}
): Promise<PluginInspection> => {
  const r = await home.run(["plugins", "inspect", id, "--json", "--runtime"], { timeoutMs: options.timeoutMs ?? 120_000 })
  if (!isRecord(r.json)) {
    throw new Error(`openclaw plugins inspect ${id} gave no JSON (exit ${r.code}):\n${tail(r.stderr || r.stdout)}`)
  }
  const plugin = isRecord(r.json["plugin"]) ? r.json["plugin"] : {}
  const providerIds = Array.isArray(plugin["providerIds"]) ? plugin["providerIds"].filter((x) => typeof x === "string") : []
  const diagnostics = Array.isArray(r.json["diagnostics"])
    ? r.json["diagnostics"].flatMap((d) => (isRecord(d) && typeof d["message"] === "string" ? [d["message"]] : []))
    : []
  const status = str(plugin["status"])
  const error = str(plugin["error"])
  return {
    ...(status === undefined ? {} : { status }),
    ...(error === undefined ? {} : { error }),
    providerIds,
    diagnostics,
    raw: r.json
  }
}

/** One `models.providers.<id>.models[]` row (`ModelDefinitionConfig`); omitted fields get defaults. */
export interface ModelRow {
  readonly id: string
  readonly name?: string | undefined
  readonly reasoning?: boolean | undefined
  readonly input?: ReadonlyArray<"text" | "image"> | undefined
  readonly contextWindow?: number | undefined
  readonly maxTokens?: number | undefined
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"])

/**
 * Declares `models.providers.<provider>` with a loopback `baseUrl` and no `apiKey`. That is what makes
 * OpenClaw authorize the provider with its synthetic local key `custom-local` (it also needs `api`
 * and at least one model row). The plugin's `createStreamFn` still owns the transport; the stream
 * receives `model.baseUrl` from here and `options.apiKey === "custom-local"`.
 */
export const addLocalProvider = async (
  home: OpenClawHome,
  p: {
    readonly provider: string
    readonly baseUrl: string
    readonly models: ReadonlyArray<string | ModelRow>
    readonly api?: string | undefined
  }
): Promise<void> => {
  const host = new URL(p.baseUrl).hostname
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new Error(`addLocalProvider: ${p.baseUrl} is not loopback; OpenClaw grants "custom-local" only to loopback URLs`)
  }
  if (p.models.length === 0) throw new Error("addLocalProvider: at least one model row is required")
  const models = p.models.map((m) => {
    const row: ModelRow = typeof m === "string" ? { id: m } : m
    return {
      id: row.id,
      name: row.name ?? row.id,
      reasoning: row.reasoning ?? false,
      input: row.input ?? ["text"],
      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
      contextWindow: row.contextWindow ?? 128_000,
      maxTokens: row.maxTokens ?? 8_192
    }
  })
  await home.updateConfig((config) =>
    deepMerge(config, {
      models: { providers: { [p.provider]: { baseUrl: p.baseUrl, api: p.api ?? "openai-completions", models } } }
    })
  )
}

// ---------------------------------------------------------------------------------------------
// Agent turns
// ---------------------------------------------------------------------------------------------

/** Options of {@link agentTurn}. */
export interface AgentTurnOptions {
  /**
   * `provider/model`, e.g. `aios/m1`. Omitted: the config's `agents.defaults.model` (primary and fallbacks), the
   * only way OpenClaw falls back on its own.
   */
  readonly model?: string | undefined
  /** `exec` mode only: `--fallback` models, in order (OpenClaw requires `model` with them). */
  readonly fallbacks?: ReadonlyArray<string> | undefined
  readonly message: string
  /** Workspace and tool working directory (`exec` mode only); default the home's workspace. */
  readonly cwd?: string | undefined
  /** Hard bound for the whole command, start-up included. Default 120 s. */
  readonly timeoutMs?: number | undefined
  /**
   * OpenClaw's own deadline for the run (`--timeout`), giving a clean `status: "timeout"` envelope
   * before the hard kill. Default: `timeoutMs` minus 30 s for start-up and cleanup, at least 5 s.
   */
  readonly agentTimeoutSec?: number | undefined
  /**
   * `"exec"` (default): `openclaw agent exec`, isolated temporary state, faster (~7–15 s).
   * `"local"`: `openclaw agent --local --agent main`, the persistent main session of this home
   * (earlier turns are in the context); one at a time per home (~13–18 s).
   */
  readonly mode?: "exec" | "local" | undefined
  /** `local` mode only: `--session-id`, to start a fresh session. */
  readonly sessionId?: string | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
}

/** What an agent turn produced. */
export interface AgentTurnResult {
  /** Exit 0 and no error in the output. */
  readonly ok: boolean
  /** The final reply text. */
  readonly text?: string
  /** OpenClaw's error (`kind` e.g. `incomplete_turn`, `timeout`, `exception`, `cli_error`). */
  readonly error?: { readonly message: string; readonly kind?: string }
  /** Exit code: 0 ok, 1 error, 2 OpenClaw deadline (`exec`); `null` when killed. */
  readonly code: number | null
  readonly timedOut: boolean
  readonly durationMs: number
  /** The parsed `--json` output. */
  readonly raw: unknown
  readonly stdout: string
  readonly stderr: string
}

const str = (u: unknown): string | undefined => (typeof u === "string" ? u : undefined)

const errorOf = (u: unknown): { message: string; kind?: string } | undefined => {
  if (!isRecord(u)) return undefined
  const message = str(u["message"])
  if (message === undefined) return undefined
  const kind = str(u["kind"]) ?? str(u["type"])
  return kind === undefined ? { message } : { message, kind }
}

const payloadTexts = (raw: Record<string, unknown>): { texts: Array<string>; errors: Array<string> } => {
  const texts: Array<string> = []
  const errors: Array<string> = []
  const payloads = raw["payloads"]
  if (Array.isArray(payloads)) {
    for (const p of payloads) {
      if (!isRecord(p)) continue
      const text = str(p["text"])
      if (text === undefined) continue
      if (p["isError"] === true) errors.push(text)
      else texts.push(text)
    }
  }
  return { texts, errors }
}

/** Reads the `agent exec --json` envelope or the `agent --local --json` result (see the findings). */
export const interpretAgentOutput = (
  raw: unknown,
  code: number | null
): { ok: boolean; text?: string; error?: { message: string; kind?: string } } => {
  if (!isRecord(raw)) return { ok: false }
  const { texts, errors } = payloadTexts(raw)
  const final = str(raw["final"])
  const text = final !== undefined && final !== "" ? final : texts.length > 0 ? texts.join("\n") : undefined
  const meta = isRecord(raw["meta"]) ? raw["meta"] : {}
  const error =
    errorOf(raw["error"]) ??
    errorOf(meta["error"]) ??
    (errors.length > 0 ? { message: errors.join("\n"), kind: "error_payload" } : undefined)
  const ok = code === 0 && raw["ok"] !== false && error === undefined
  return {
    ok,
    ...(text === undefined ? {} : { text }),
    ...(error === undefined ? {} : { error })
  }
}

/**
 * One headless agent turn. Never rejects for a failed turn: a model error, an OpenClaw timeout or
 * a killed process all come back as `ok: false` with `error`.
 */
export const agentTurn = async (home: OpenClawHome, options: AgentTurnOptions): Promise<AgentTurnResult> => {
  const mode = options.mode ?? "exec"
  if (mode === "local" && (options.cwd !== undefined || options.fallbacks !== undefined)) {
    throw new Error("agentTurn: cwd and fallbacks apply to mode \"exec\" only; the local mode uses the home's config")
  }
  const timeoutMs = options.timeoutMs ?? 120_000
  const agentTimeoutSec = options.agentTimeoutSec ?? Math.max(5, Math.floor((timeoutMs - 30_000) / 1000))
  // A file keeps messages that start with "-" or are large away from the argument parser.
  const messageFile = path.join(home.home, "tmp", `message-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.txt`)
  await fs.writeFile(messageFile, options.message)
  const model = options.model === undefined ? [] : ["--model", options.model]
  const fallbacks = (options.fallbacks ?? []).flatMap((f) => ["--fallback", f])
  const args =
    mode === "exec"
      ? ["agent", "exec", "--message-file", messageFile, ...model, ...fallbacks, "--cwd", options.cwd ?? home.workspace]
      : [
          "agent", "--local", "--agent", "main", "--message-file", messageFile, ...model,
          ...(options.sessionId === undefined ? [] : ["--session-id", options.sessionId])
        ]
  try {
    const r = await home.run([...args, "--json", "--timeout", String(agentTimeoutSec)], {
      timeoutMs,
      cwd: options.cwd ?? home.workspace,
      env: options.env
    })
    const verdict = interpretAgentOutput(r.json, r.code)
    const error =
      verdict.error ??
      (verdict.ok
        ? undefined
        : {
            message: r.timedOut
              ? `openclaw was killed after ${timeoutMs} ms`
              : `openclaw exited ${r.code ?? r.signal} without a result:\n${tail(r.stderr || r.stdout)}`,
            kind: "harness"
          })
    return {
      ok: verdict.ok && !r.timedOut,
      ...(verdict.text === undefined ? {} : { text: verdict.text }),
      ...(error === undefined ? {} : { error }),
      code: r.code,
      timedOut: r.timedOut,
      durationMs: r.durationMs,
      raw: r.json,
      stdout: r.stdout,
      stderr: r.stderr
    }
  } finally {
    await fs.rm(messageFile, { force: true })
  }
}

const tail = (text: string, lines = 40): string => text.trimEnd().split("\n").slice(-lines).join("\n")
