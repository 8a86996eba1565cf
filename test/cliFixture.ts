/**
 * The shared fixture of the CLI tests: a real ReferenceKernel for the whole file, a temp folder (optionally holding
 * a fake, built OpenClaw plugin), and the CLI run in-process with its output captured.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, beforeAll, beforeEach } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { randomUUID } from "node:crypto"
import { mkdir, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { run } from "../src/cli/Cli.js"
import * as Output from "../src/cli/Output.js"
import { type Handle, startReferenceKernel } from "../src/testing/ReferenceKernel.js"

export { deadUrl } from "./util.js"

/** Runs a CLI program with `output` as its Output and `env` as the whole environment (nothing from `process.env`). */
export const inProcess = (output: Output.Service, env: Record<string, string> = {}) =>
<A, E>(self: Effect.Effect<A, E, NodeContext.NodeContext | Output.Output>): Effect.Effect<A, E> =>
  self.pipe(
    Effect.provide(Layer.merge(NodeContext.layer, Layer.succeed(Output.Output, output))),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

/** What one in-process CLI run gave: exit code, captured output, and how many writes stdout received. */
export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  readonly writes: number
}

/** Runs `effect-aios <args>` with `env` as the whole environment; output is captured, every write counted. */
export const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Effect.Effect<CliResult> =>
  Effect.gen(function*() {
    const [service, captured] = yield* Output.capture
    let writes = 0
    const counting: Output.Service = { out: (t) => Effect.zipRight(Effect.sync(() => writes++), service.out(t)), err: service.err }
    const code = yield* run(["node", "effect-aios", ...args]).pipe(inProcess(counting, env))
    return { code, stdout: yield* captured.stdout, stderr: yield* captured.stderr, writes }
  })

/** Writes a minimal built OpenClaw plugin with id `aios` (what `openclaw setup --plugin-dir` accepts) into `dir`. */
const writePlugin = async (dir: string) => {
  await mkdir(Path.join(dir, "dist"), { recursive: true })
  await writeFile(Path.join(dir, "openclaw.plugin.json"), JSON.stringify({ id: "aios", configSchema: {} }))
  await writeFile(Path.join(dir, "package.json"), JSON.stringify({ type: "module", openclaw: { extensions: ["./dist/index.js"] } }))
  await writeFile(Path.join(dir, "dist", "index.js"), "export default {}\n")
}

/** How a test file's fixture differs from the others'. */
export interface CliFixtureOptions<P extends boolean> {
  /** Start of the temp folder's name, e.g. `"effect-aios-cli-"`. */
  readonly prefix: string
  /** Write a fake plugin into `<root>/plugin` (then returned as `pluginDir`). */
  readonly plugin?: P
  /** Give every `cli` run `HOME=<root>` unless its `env` says otherwise. */
  readonly home?: boolean
}

/** The fixture's parts. `kernel` and the folders may be named at module level; they are live from `beforeAll` on. */
export type CliFixture<P extends boolean> =
  & {
    /** The file's ReferenceKernel: reset, serving `echo` and `tool-user`, before each test. */
    readonly kernel: Handle
    /** The temp folder, removed after the file. */
    readonly root: string
    /** `runCli` with the fixture's default environment under `env`. */
    readonly cli: (args: ReadonlyArray<string>, env?: Record<string, string>) => Effect.Effect<CliResult>
  }
  & (P extends true ? { readonly pluginDir: string } : unknown)

/**
 * Registers the file's `beforeAll` (start the kernel, make the temp folder), `afterAll` (close and remove them) and
 * `beforeEach` (reset the kernel to its two default models), and returns their parts.
 */
export const cliFixture = <P extends boolean = false>(options: CliFixtureOptions<P>): CliFixture<P> => {
  // Named now (made in beforeAll) so that test files can hold it in a module-level const.
  const root = Path.join(tmpdir(), `${options.prefix}${randomUUID()}`)
  const pluginDir = Path.join(root, "plugin")
  let started: Handle | undefined
  const current = (): Handle => {
    if (started === undefined) throw new Error("the CLI fixture's kernel is used before beforeAll started it")
    return started
  }
  // Forwards to the kernel started in beforeAll, so the handle too can be held before there is one.
  const kernel = new Proxy({} as Handle, { get: (_, key) => Reflect.get(current(), key) })

  beforeAll(async () => {
    started = await startReferenceKernel()
    await mkdir(root)
    if (options.plugin === true) await writePlugin(pluginDir)
  })
  afterAll(async () => {
    await started?.close()
    await rm(root, { recursive: true, force: true })
  })
  beforeEach(() => {
    kernel.reset()
    kernel.setModels([{ name: "echo", behaviour: "echo" }, { name: "tool-user", behaviour: "tools" }])
  })

  const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
    runCli(args, options.home === true ? { HOME: root, ...env } : env)
  return { kernel, root, pluginDir, cli } as CliFixture<P>
}
