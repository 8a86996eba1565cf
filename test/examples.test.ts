/**
 * Every `examples/*.ts` file has an npm script and runs to completion (exit code 0), so none can rot. Files are
 * discovered, not listed. Each runs as its script would on a fresh machine: no `AIOS_*` / `OPENCLAW_*`
 * variables, so it starts its own ReferenceKernel. The demo (`npm start`) is also run against a kernel that is
 * already up at `AIOS_URL`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type Handle, startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { deadUrl } from "./util.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const examples = readdirSync(Path.join(root, "examples")).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")).sort()
const scripts = (JSON.parse(readFileSync(Path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts

/** Generous: start-up under a loaded machine; the examples themselves take a second or two. */
const EXAMPLE_TIMEOUT_MS = 90_000

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

const runExample = (file: string, env: Record<string, string> = {}): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", Path.join("examples", file)], {
      cwd: root,
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(AIOS_|OPENCLAW_)/.test(k))),
        NO_COLOR: "1",
        ...env
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, EXAMPLE_TIMEOUT_MS)
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("error", reject)
    child.once("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, timedOut })
    })
  })

const expectSuccess = (r: Result) => {
  expect(r.timedOut, r.stderr).toBe(false)
  expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0)
  expect(r.stdout.trim()).not.toBe("")
}

describe("examples", () => {
  it("the folder holds the demo at least", () => {
    expect(examples).toContain("demo.ts")
  })

  for (const file of examples) {
    describe(file, () => {
      it("has an npm script", () => {
        const runners = Object.entries(scripts).filter(([, command]) => command.includes(`examples/${file}`))
        expect(runners.map(([name]) => name)).not.toEqual([])
      })

      it("runs to completion (exit code 0)", async () => {
        // The demo first probes AIOS_URL: point it at 127.0.0.1 where nothing listens, as on a fresh machine.
        const r = await runExample(file, file === "demo.ts" ? { AIOS_URL: await deadUrl() } : {})
        expectSuccess(r)
      }, EXAMPLE_TIMEOUT_MS + 10_000)
    })
  }
})

describe("demo (npm start)", () => {
  let kernel: Handle
  beforeAll(async () => {
    kernel = await startReferenceKernel()
  })
  afterAll(() => kernel.close())

  it("no kernel at AIOS_URL: starts the ReferenceKernel, then a tool round trip ends in the file's contents", async () => {
    const url = await deadUrl()
    const r = await runExample("demo.ts", { AIOS_URL: url })
    expectSuccess(r)
    expect(r.stdout).toContain(`nothing answers at ${url}; started the ReferenceKernel`)
    const events = r.stdout.split("\n").map((l) => l.trim().split(" ")[0])
    expect(events).toEqual(expect.arrayContaining(["start", "text_delta", "toolcall_end", "done"]))
    expect(r.stdout).toMatch(/toolcall_end read \{"path":"notes\.txt"\}/)
    expect(r.stdout).toMatch(/answer> [\s\S]*The launch code is 4217/)
  }, EXAMPLE_TIMEOUT_MS + 10_000)

  it("a kernel at AIOS_URL: uses it (two /query calls: the tool call, then the answer)", async () => {
    const r = await runExample("demo.ts", { AIOS_URL: kernel.url })
    expectSuccess(r)
    expect(r.stdout).toContain(`kernel: ${kernel.url} answers /status`)
    expect(kernel.count("/query")).toBe(2)
  }, EXAMPLE_TIMEOUT_MS + 10_000)
})
