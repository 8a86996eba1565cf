/**
 * The one error a command ends with: a message for the user (one line naming the URL or file at fault, plus
 * what to do) and the process exit code.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * @since 0.1.0
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly message: string
  /** Default 1. */
  readonly exitCode?: number | undefined
  /** Already reported (e.g. doctor's table): print nothing more. */
  readonly silent?: boolean | undefined
}> {}

/** A `CliError` from anything with a message (kernel, config, file-system errors). */
export const fromError = (error: unknown, prefix?: string): CliError => {
  const text = error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
    ? String((error as { message: unknown }).message)
    : String(error)
  return new CliError({ message: prefix === undefined ? text : `${prefix}: ${text}` })
}
