/**
 * A real `redis-server` (Debian's `redis-server` package) on a loopback port the test picks, for the Redis
 * tests: started, killed, paused and restarted by them. No persistence, so nothing is left behind.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { freePort } from "./util.js"

/** Whether `redis-server` is on PATH; the Redis test files skip without it. */
export const redisAvailable: boolean = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0

/** The reason the Redis test files give when they skip. */
export const skipNote = "redis-server not found: skipped; install it with `apt-get install redis-server` (CI does)"

if (!redisAvailable) console.warn(skipNote)

export { freePort }

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** SIGKILL, as a crash; resolves once the process is gone. */
  readonly kill: () => Promise<void>
  /** SIGSTOP: the connection stays open but nothing answers (a "slow" Redis). */
  readonly pause: () => void
  readonly resume: () => void
  /** A new server on the same port (after `kill`). */
  readonly restart: () => Promise<void>
  /** Stops the current server, if running. */
  readonly stop: () => Promise<void>
}

const launch = (port: number): Promise<ChildProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let seen = ""
    const onData = (d: Buffer) => {
      seen += d.toString()
      if (seen.includes("Ready to accept connections")) {
        child.stdout?.off("data", onData)
        child.stdout?.resume()
        resolve(child)
      }
    }
    child.stdout?.on("data", onData)
    child.stderr?.resume()
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${seen}`)))
  })

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

export const startRedis = async (port?: number): Promise<RedisServer> => {
  const chosen = port ?? (await freePort())
  let child: ChildProcess | undefined = await launch(chosen)
  const signal = async (name: NodeJS.Signals) => {
    const current = child
    child = undefined
    if (current === undefined) return
    current.kill("SIGCONT")
    current.kill(name)
    await exited(current)
  }
  return {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    kill: () => signal("SIGKILL"),
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
    restart: async () => {
      await signal("SIGKILL")
      child = await launch(chosen)
    },
    stop: () => signal("SIGTERM")
  }
}
