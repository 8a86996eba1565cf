/**
 * OpenClaw's log file (`logging.file`, set per home by the harness), read back: one entry per JSON line, with its
 * time. Commands that use the home's config (`agent --local`, plugin commands) write there; `agent exec` runs on
 * a config of its own and logs to the machine-wide file instead.
 */
import * as fs from "node:fs/promises"
import type { OpenClawHome } from "./openclawHarness.js"

/** One log line. */
export interface LogEntry {
  /** Epoch milliseconds. */
  readonly time: number
  readonly subsystem?: string
  /** The text of the line: its message, or its event name for a structured line. */
  readonly message: string
  /** The structured fields (`event`, `decision`, `failoverReason`, …), `{}` for a plain line. */
  readonly fields: Readonly<Record<string, unknown>>
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const parseLine = (line: string): LogEntry | undefined => {
  let raw: unknown
  try {
    raw = JSON.parse(line)
  } catch {
    return undefined
  }
  if (!isRecord(raw)) return undefined
  const meta = isRecord(raw["_meta"]) ? raw["_meta"] : {}
  const time = typeof meta["date"] === "string" ? Date.parse(meta["date"]) : Number.NaN
  if (Number.isNaN(time)) return undefined
  let subsystem: string | undefined
  try {
    const bindings: unknown = typeof raw["0"] === "string" ? JSON.parse(raw["0"]) : undefined
    if (isRecord(bindings) && typeof bindings["subsystem"] === "string") subsystem = bindings["subsystem"]
  } catch {
    // The first field was a message, not bindings.
  }
  const parts = Object.keys(raw).filter((k) => /^\d+$/.test(k)).map((k) => raw[k])
  const fields = parts.find(isRecord) ?? {}
  const texts = parts.filter((p): p is string => typeof p === "string" && p !== raw["0"])
  const message = texts.join(" ") || (typeof fields["event"] === "string" ? fields["event"] : "")
  return { time, ...(subsystem === undefined ? {} : { subsystem }), message, fields }
}

/** The home's log so far (empty when nothing was written), from `since` (epoch ms) on when given. */
export const readLog = async (home: OpenClawHome, since = 0): Promise<ReadonlyArray<LogEntry>> => {
  const text = await fs.readFile(home.logFile, "utf8").catch(() => "")
  return text.split("\n").flatMap((line) => {
    const entry = line.trim() === "" ? undefined : parseLine(line)
    return entry === undefined || entry.time < since ? [] : [entry]
  })
}

/** Entries whose structured `event` is `event`, in order. */
export const events = (log: ReadonlyArray<LogEntry>, event: string): ReadonlyArray<LogEntry> =>
  log.filter((e) => e.fields["event"] === event)

/** Seconds between two entries, for reports. */
export const secondsBetween = (from: LogEntry | undefined, to: LogEntry | undefined): number | undefined =>
  from === undefined || to === undefined ? undefined : (to.time - from.time) / 1000
