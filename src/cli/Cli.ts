/**
 * The `effect-aios` command line: `models`, `chat`, `doctor`, `openclaw setup|remove`, `kernel serve`.
 * `run` turns an argv into an exit code and never fails: errors print one line on stderr (naming the URL or
 * file at fault), never a stack trace.
 *
 * @since 0.1.0
 */
import * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import * as Path from "node:path"
import { chat } from "./commands/chat.js"
import { doctor } from "./commands/doctor.js"
import { kernel } from "./commands/kernel.js"
import { models } from "./commands/models.js"
import { openclaw } from "./commands/openclaw.js"
import { stderrLogger, toCliError } from "./commands/shared.js"
import * as Output from "./Output.js"
import { packageRoot } from "./PluginDir.js"

const version = (() => {
  try {
    const pkg = JSON.parse(readFileSync(Path.join(packageRoot, "package.json"), "utf8")) as { version?: unknown }
    return typeof pkg.version === "string" ? pkg.version : "0.0.0"
  } catch {
    return "0.0.0"
  }
})()

/**
 * The root command.
 *
 * @since 0.1.0
 */
export const command = Command.make("effect-aios").pipe(
  Command.withDescription("The AIOS kernel from the terminal, and its OpenClaw provider plugin set up in one command"),
  Command.withSubcommands([models, chat, doctor, openclaw, kernel])
)

const cli = Command.run(command, { name: "effect-aios", version })

/** Exit code for wrong usage; @effect/cli has already printed the help text. */
export const USAGE_EXIT_CODE = 2

/**
 * Runs the command line `argv` (as `process.argv`: runtime and script first) and returns the exit code.
 *
 * @since 0.1.0
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<number, never, CliApp.CliApp.Environment | Output.Output> =>
  cli(argv).pipe(
    Effect.as(0),
    Effect.catchAll((error) => {
      if (ValidationError.isValidationError(error)) return Effect.succeed(USAGE_EXIT_CODE)
      const e = toCliError(error)
      return Effect.as(e.silent === true ? Effect.void : Output.errorLine(`effect-aios: ${e.message}`), e.exitCode ?? 1)
    }),
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.interrupt
        : Effect.as(
          Output.errorLine(`effect-aios: internal error: ${Cause.pretty(cause).split("\n")[0] ?? "unknown"}`),
          70
        )
    ),
    Effect.provide(stderrLogger)
  )
