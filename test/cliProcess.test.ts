/**
 * The `effect-aios` executable end to end, as a process (`node --import tsx src/cli/main.ts`): exit codes,
 * stdout / stderr, signals.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type Handle, startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { deadUrl } from "./cliFixture.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const main = Path.join(root, "src", "cli", "main.ts")

/** The environment without the variables the CLI reads, so the machine's own settings do not leak in. */
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(AIOS_|OPENCLAW_)/.test(k))),
  NO_COLOR: "1",
  ...extra
})

interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

const start = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  spawn(process.execPath, ["--import", "tsx", main, ...args], { cwd: root, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] })

const finish = (child: ChildProcess): Promise<Result> =>
  new Promise((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("error", reject)
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })

const effectAios = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => finish(start(args, env))

/** Resolves with the first match of `pattern` on the child's stdout. */
const waitForStdout = (child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> =>
  new Promise((resolve, reject) => {
    let seen = ""
    const onData = (d: Buffer) => {
      seen += d.toString()
      const m = seen.match(pattern)
      if (m) {
        child.stdout?.off("data", onData)
        resolve(m)
      }
    }
    child.stdout?.on("data", onData)
    child.once("close", (code) => reject(new Error(`exited (${code}) before printing ${pattern}: ${seen}`)))
  })

let kernel: Handle
beforeAll(async () => {
  kernel = await startReferenceKernel()
})
afterAll(() => kernel.close())

describe("effect-aios as a process", () => {
  it("models against a kernel that is down: exit code 1, one line on stderr naming the URL, no stack trace", async () => {
    const url = await deadUrl()
    const r = await effectAios(["models", "--url", url])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).toContain(url)
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })

  it("chat streams the answer to stdout and exits 0", async () => {
    const r = await effectAios(["chat", "--model", "echo", "--url", kernel.url, "ping", "from", "a", "process"])
    expect(r).toMatchObject({ code: 0, stdout: "ping from a process\n" })
  })

  it("chat logs a retry on stderr only: stdout is the answer alone", async () => {
    kernel.reset()
    kernel.script({ _tag: "Status", statusCode: 429 })
    const r = await effectAios(["chat", "--model", "echo", "--url", kernel.url, "still", "answered"], { AIOS_RETRY_DELAY_MS: "1" })
    expect(r).toMatchObject({ code: 0, stdout: "still answered\n" })
    expect(r.stderr).toMatch(/^effect-aios warn: Retrying .*rate_limit/m)
  })

  it("wrong usage: exit code 2", async () => {
    const r = await effectAios(["models", "--no-such-flag"])
    expect(r.code).toBe(2)
  })

  it("kernel serve: listens, serves models to another process, and stops cleanly on SIGTERM", async () => {
    const server = start(["kernel", "serve", "--port", "0"])
    const done = finish(server)
    const [, url] = await waitForStdout(server, /listening on (http:\/\/127\.0\.0\.1:\d+)/)
    const models = await effectAios(["models"], { AIOS_URL: url! })
    expect(models.code).toBe(0)
    expect(models.stdout).toMatch(/^echo\s+reference\s+128000\s+1000$/m)
    server.kill("SIGTERM")
    const r = await done
    expect(r.code).toBe(0)
    expect(r.stderr).toBe("")
  })
})
