/**
 * Effect's log lines as text, to a logger shaped like `console` (and like OpenClaw's plugin logger): one line per
 * entry, `[aios] message key=value …`, written with the method for its level. A logger that throws loses that
 * line, never the work that logged it.
 */
import * as Logger from "effect/Logger"

/** Where the lines go. */
export interface Sink {
  readonly debug?: ((message: string) => void) | undefined
  readonly info: (message: string) => void
  readonly warn: (message: string) => void
  readonly error: (message: string) => void
}

/** An Effect logger writing to `sink`. */
export const make = (sink: Sink): Logger.Logger<unknown, void> =>
  Logger.make(({ annotations, logLevel, message }) => {
    const text = [
      `[aios] ${Array.isArray(message) ? message.map(String).join(" ") : String(message)}`,
      ...[...annotations].map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    ].join(" ")
    const write = logLevel._tag === "Error" || logLevel._tag === "Fatal"
      ? sink.error
      : logLevel._tag === "Warning"
      ? sink.warn
      : logLevel._tag === "Info"
      ? sink.info
      : sink.debug
    try {
      if (typeof write === "function") write.call(sink, text)
    } catch {
      // The logger failed; the work goes on.
    }
  })
