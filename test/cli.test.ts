/**
 * The CLI commands in-process (argv in, exit code and captured output out) against a real ReferenceKernel.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { writeFile } from "node:fs/promises"
import { createServer } from "node:net"
import * as Path from "node:path"
import { run } from "../src/cli/Cli.js"
import * as Output from "../src/cli/Output.js"
import { startReferenceKernel } from "../src/testing/ReferenceKernel.js"
import { cliFixture, deadUrl, inProcess } from "./cliFixture.js"

const { kernel, root: dir, cli } = cliFixture({ prefix: "effect-aios-cli-" })

/** The body rows of a table printed by `models`. */
const tableRows = (stdout: string) =>
  stdout.trim().split("\n").slice(2).map((line) => line.trim().split(/\s{2,}/))

const noStackTrace = (text: string) => {
  expect(text).not.toMatch(/^\s+at /m)
  expect(text.trim().split("\n")).toHaveLength(1)
}

describe("models", () => {
  it.effect("prints the kernel's models as a table: name, backend, context window, max tokens", () =>
    Effect.gen(function*() {
      const served = [{ name: "alpha", backend: "anthropic" }, { name: "beta-7b", backend: "ollama" }, { name: "gamma" }]
      kernel.setModels(served)
      const r = yield* cli(["models", "--url", kernel.url])
      expect(r.code).toBe(0)
      expect(r.stdout.split("\n")[0]).toMatch(/^name\s+backend\s+context window\s+max tokens$/)
      expect(tableRows(r.stdout)).toEqual(served.map((m) => [m.name, m.backend ?? "reference", "128000", "1000"]))
    }))

  it.effect("reads AIOS_URL when --url is not given", () =>
    Effect.gen(function*() {
      const r = yield* cli(["models"], { AIOS_URL: kernel.url })
      expect(r.code).toBe(0)
      expect(tableRows(r.stdout).map((row) => row[0])).toEqual(["echo", "tool-user"])
      expect(kernel.count("/core/llms/list")).toBe(1)
    }))

  it.effect("a kernel that is down: exit code 1 and one line naming the URL, no stack trace", () =>
    Effect.gen(function*() {
      const url = yield* Effect.promise(deadUrl)
      const r = yield* cli(["models", "--url", url])
      expect(r.code).toBe(1)
      expect(r.stdout).toBe("")
      expect(r.stderr).toContain(url)
      expect(r.stderr).toContain("effect-aios kernel serve")
      noStackTrace(r.stderr)
    }))

  it.effect("a kernel that answers garbage: exit code 1 and a message naming the URL", () =>
    Effect.gen(function*() {
      kernel.scriptEndpoint("/core/llms/list", { _tag: "Malformed" })
      const r = yield* cli(["models", "--url", kernel.url])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(kernel.url)
      noStackTrace(r.stderr)
    }))

  it.effect("an invalid --url is refused before any request", () =>
    Effect.gen(function*() {
      const r = yield* cli(["models", "--url", "not a url"])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain("--url \"not a url\"")
      expect(kernel.requests()).toEqual([])
    }))

  it.effect("an empty model list is said on stderr, not an error", () =>
    Effect.gen(function*() {
      kernel.setModels([])
      const r = yield* cli(["models", "--url", kernel.url])
      expect(r.code).toBe(0)
      expect(r.stderr).toContain(`${kernel.url} serves no models`)
    }))

  it.live("AIOS_KERNELS: the union of every kernel's models, each once; --url names one kernel instead", () =>
    Effect.gen(function*() {
      const other = yield* Effect.acquireRelease(
        Effect.promise(() => startReferenceKernel({ models: [{ name: "echo", backend: "second" }, { name: "zeta", backend: "second" }] })),
        (k) => Effect.promise(() => k.close())
      )
      const env = { AIOS_KERNELS: `${kernel.url},${other.url}` }
      const pooled = yield* cli(["models"], env)
      expect(pooled.code).toBe(0)
      expect(tableRows(pooled.stdout).map((row) => row.slice(0, 2))).toEqual([
        ["echo", "reference"],
        ["tool-user", "reference"],
        ["zeta", "second"]
      ])
      const one = yield* cli(["models", "--url", other.url], env)
      expect(tableRows(one.stdout).map((row) => row[0])).toEqual(["echo", "zeta"])
      expect(kernel.count("/core/llms/list")).toBe(1)
    }).pipe(Effect.scoped))
})

describe("chat", () => {
  it.effect("answers one prompt (words joined), on the default model: the kernel's first", () =>
    Effect.gen(function*() {
      const r = yield* cli(["chat", "--url", kernel.url, "hello", "there", "kernel"])
      expect(r.code).toBe(0)
      expect(r.stdout).toBe("hello there kernel\n")
      const query = kernel.requests("/query")
      expect(query).toHaveLength(1)
      expect(JSON.stringify(query[0]?.body)).toContain("\"name\":\"echo\"")
    }))

  it.effect("--model picks the model; AIOS_DEFAULT_MODEL is the default otherwise", () =>
    Effect.gen(function*() {
      kernel.script({ _tag: "Reply", text: "from the script" })
      const byFlag = yield* cli(["chat", "-m", "tool-user", "--url", kernel.url, "hi"])
      expect(byFlag.stdout).toBe("from the script\n")
      const byEnv = yield* cli(["chat", "--url", kernel.url, "hi"], { AIOS_DEFAULT_MODEL: "tool-user" })
      expect(byEnv.stdout).toBe("You said: hi\n")
      const models = kernel.requests("/query").map((q) => JSON.stringify(q.body).match(/"llms":\[\{"name":"([^"]+)"/)?.[1])
      expect(models).toEqual(["tool-user", "tool-user"])
    }))

  it.effect("streams: an OpenAI-compatible backend's pieces reach stdout one by one", () =>
    Effect.gen(function*() {
      const prompt = "a prompt long enough to arrive in several pieces"
      const r = yield* cli(["chat", "-m", "echo", "--url", `${kernel.url}/v1`, prompt], { AIOS_BACKEND: "openai-compatible" })
      expect(r.code).toBe(0)
      expect(r.stdout).toBe(`${prompt}\n`)
      expect(r.writes).toBeGreaterThan(3)
    }))

  // Live clock: the retry waits AIOS_RETRY_DELAY_MS (1 ms) on the real schedule.
  it.live("a retried rate limit: the warning goes to stderr, stdout carries the answer only", () =>
    Effect.gen(function*() {
      kernel.script({ _tag: "Status", statusCode: 429 })
      const r = yield* cli(["chat", "-m", "echo", "--url", kernel.url, "hi"], { AIOS_RETRY_DELAY_MS: "1" })
      expect(r.code).toBe(0)
      expect(r.stdout).toBe("hi\n")
      expect(r.stderr).toMatch(/^effect-aios warn: Retrying .*rate_limit/m)
      expect(kernel.count("/query")).toBe(2)
    }))

  it.effect("an unknown model: exit code 1 naming the model, the URL and what is available", () =>
    Effect.gen(function*() {
      const r = yield* cli(["chat", "-m", "nope", "--url", kernel.url, "hi"])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain("'nope'")
      expect(r.stderr).toContain(kernel.url)
      expect(r.stderr).toContain("echo, tool-user")
      expect(kernel.count("/query")).toBe(0)
    }))

  it.effect("a kernel that is down: exit code 1, one line, no stack trace", () =>
    Effect.gen(function*() {
      const url = yield* Effect.promise(deadUrl)
      const r = yield* cli(["chat", "--url", url, "hi"])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(url)
      noStackTrace(r.stderr)
    }))

  it.effect("a prompt is required: usage error, exit code 2", () =>
    Effect.gen(function*() {
      const r = yield* cli(["chat", "--url", kernel.url])
      expect(r.code).toBe(2)
      expect(kernel.requests()).toEqual([])
    }))
})

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const a = s.address()
      const port = typeof a === "object" && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })

describe("kernel serve", () => {
  /** Starts `kernel serve <args>` in a fiber; returns its URL once it says it listens. */
  const serve = (args: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const [service, captured] = yield* Output.capture
      const fiber = yield* run(["node", "effect-aios", "kernel", "serve", ...args]).pipe(inProcess(service), Effect.fork)
      const ready = yield* Effect.raceFirst(
        Effect.map(captured.waitForStdout(/listening on (http:\/\/\S+)/), (m) => ({ url: m[1]!, code: undefined })),
        Effect.map(Fiber.join(fiber), (code) => ({ url: undefined, code }))
      )
      return { ...ready, fiber, captured }
    })

  it.live("serves the reference models on the port asked for, until interrupted", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const served = yield* serve(["--port", String(port)])
      expect(served.url).toBe(`http://127.0.0.1:${port}`)
      const r = yield* cli(["models", "--url", served.url!])
      expect(tableRows(r.stdout).map((row) => row[0])).toEqual(["echo", "tool-user"])
      yield* Fiber.interrupt(served.fiber)
      const after = yield* cli(["models", "--url", served.url!])
      expect(after.code).toBe(1)
    }))

  it.live("--script: models and scripted faults from a JSON file", () =>
    Effect.gen(function*() {
      const file = Path.join(dir, "script.json")
      yield* Effect.promise(() =>
        writeFile(
          file,
          JSON.stringify({
            models: [{ name: "scripted-model", backend: "demo", behaviour: "echo" }],
            script: [{ _tag: "Reply", text: "first reply is scripted" }],
            endpoints: { "/status": [{ _tag: "Http", status: 500 }] }
          })
        )
      )
      const served = yield* serve(["--port", "0", "--script", file])
      const url = served.url!
      const models = yield* cli(["models", "--url", url])
      expect(tableRows(models.stdout)).toEqual([["scripted-model", "demo", "128000", "1000"]])
      const first = yield* cli(["chat", "--url", url, "hello"])
      const second = yield* cli(["chat", "--url", url, "hello"])
      expect([first.stdout, second.stdout]).toEqual(["first reply is scripted\n", "hello\n"])
      const status1 = yield* Effect.promise(() => fetch(`${url}/status`).then((r) => r.status))
      const status2 = yield* Effect.promise(() => fetch(`${url}/status`).then((r) => r.status))
      expect([status1, status2]).toEqual([500, 200])
      yield* Fiber.interrupt(served.fiber)
    }))

  it.live("a script file that is not a script: exit code 1 naming the file and the key", () =>
    Effect.gen(function*() {
      const file = Path.join(dir, "bad-script.json")
      yield* Effect.promise(() => writeFile(file, JSON.stringify({ script: [{ _tag: "Explode" }] })))
      const served = yield* serve(["--port", "0", "--script", file])
      expect(served.url).toBeUndefined()
      expect(served.code).toBe(1)
      const stderr = yield* served.captured.stderr
      expect(stderr).toContain(file)
      expect(stderr).toContain("script.0")
    }))

  it.live("a port in use: exit code 1 and how to pick another", () =>
    Effect.gen(function*() {
      const served = yield* serve(["--port", String(kernel.port)])
      expect(served.code).toBe(1)
      const stderr = yield* served.captured.stderr
      expect(stderr).toContain(`127.0.0.1:${kernel.port}`)
      expect(stderr).toContain("--port 0")
      noStackTrace(stderr)
    }))
})
