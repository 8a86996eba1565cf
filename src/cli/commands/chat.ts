/**
 * `effect-aios chat [--model] [--url] <prompt>`: one model call, the answer streamed to stdout as it arrives.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { ModelCatalog } from "../../ModelCatalog.js"
import { Turn } from "../../Turn.js"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"
import { commandConfig, stack, toCliError, urlOption } from "./shared.js"

const modelOption = Options.text("model").pipe(
  Options.withAlias("m"),
  Options.withDescription("Model name or alias (default: $AIOS_DEFAULT_MODEL, else the kernel's first model)"),
  Options.optional
)

const promptArgs = Args.text({ name: "prompt" }).pipe(
  Args.withDescription("What to ask; several words are joined with spaces"),
  Args.atLeast(1)
)

/**
 * @since 0.1.0
 */
export const chat = Command.make("chat", { model: modelOption, url: urlOption, prompt: promptArgs }, (args) =>
  Effect.gen(function*() {
    const config = yield* commandConfig(args.url)
    const prompt = args.prompt.join(" ")
    yield* Effect.gen(function*() {
      const catalog = yield* ModelCatalog
      const requested = Option.getOrUndefined(args.model) ?? config.defaultModel
      const model = requested !== undefined
        ? (config.aliases[requested] ?? requested)
        : (yield* catalog.list)[0]?.name
      if (model === undefined) {
        return yield* new CliError({ message: `The kernel at ${config.baseUrl} serves no models; configure one in its config.yaml.` })
      }
      const turn = yield* Turn
      let endsWithNewline = true
      yield* turn.run({ model, context: { messages: [{ role: "user", content: prompt }] } }).pipe(
        Stream.runForEach((event) => {
          if (event._tag === "TextDelta") {
            endsWithNewline = event.text.endsWith("\n")
            return Output.write(event.text)
          }
          if (event._tag === "ToolCallEnd") {
            endsWithNewline = true
            return Output.line(`\n[tool call ${event.name} ${JSON.stringify(event.arguments)} — not run: chat offers no tools]`)
          }
          return Effect.void
        })
      )
      if (!endsWithNewline) yield* Output.write("\n")
    }).pipe(Effect.provide(stack(config)), Effect.mapError(toCliError))
  })).pipe(Command.withDescription("Ask one question; the answer streams to the terminal"))
