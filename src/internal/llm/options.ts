/**
 * What a caller of `Llm` passes, decoded (it may come from plain JavaScript), and the conversation `Turn` renders
 * from it. Nothing reaches a backend when the options are wrong.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as ToolTags from "../../ToolTags.js"

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** The options Schema; excess keys (such as a Promise caller's `signal`) are ignored. */
export const Options = Schema.Struct({
  prompt: Schema.optional(Schema.String),
  system: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String.pipe(Schema.filter((s) => s.trim() !== "" || "must not be empty"))),
  maxTokens: Schema.optional(PositiveInt),
  timeoutMs: Schema.optional(PositiveInt),
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  stopSequences: Schema.optional(Schema.Array(Schema.NonEmptyString)),
  messages: Schema.optional(Schema.Array(Schema.Struct({
    role: Schema.Literal("user", "assistant", "system"),
    content: Schema.String
  })))
})
export type Options = typeof Options.Type

/** What a caller's getter or Proxy threw while its options were read. */
const unreadable = (e: unknown): ReadonlyArray<string> => [
  `options could not be read (${e instanceof Error ? e.message : String(e)})`
]

/**
 * Decodes `input`; the left side lists each problem, its path first. The options are read once, here (decoding
 * copies them): a getter that throws or a hostile Proxy is a problem named in words, never a throw.
 */
export const validate = (input: unknown): Either.Either<Options, ReadonlyArray<string>> =>
  Either.flatMap(Either.try({ try: () => decode(input), catch: unreadable }), (decoded) => decoded)

const decode = (input: unknown): Either.Either<Options, ReadonlyArray<string>> =>
  Schema.decodeUnknownEither(Options, { errors: "all", onExcessProperty: "ignore" })(input ?? {}).pipe(
    Either.mapLeft((e) =>
      ParseResult.ArrayFormatter.formatErrorSync(e).map((i) =>
        `${i.path.map(String).join(".") || "options"}: ${i.message.split("\n")[0]}`
      )
    ),
    Either.flatMap((o): Either.Either<Options, ReadonlyArray<string>> => {
      if (o.prompt === undefined && o.messages === undefined) return Either.left(["give a prompt or messages"])
      if (o.prompt !== undefined && o.prompt.trim() === "") return Either.left(["prompt is empty"])
      if (o.prompt === undefined && !(o.messages ?? []).some((m) => m.role !== "system" && m.content.trim() !== "")) {
        return Either.left(["messages hold no user or assistant text"])
      }
      return Either.right(o)
    })
  )

/** The conversation: system texts joined, the history, then the prompt as the last user turn. */
export const toContext = (o: Options): ToolTags.Context => {
  const history = o.messages ?? []
  const system = [o.system ?? "", ...history.filter((m) => m.role === "system").map((m) => m.content)]
    .filter((s) => s.trim() !== "")
    .join("\n\n")
  const messages: Array<ToolTags.Message> = history.flatMap((m): Array<ToolTags.Message> =>
    m.role === "user"
      ? [{ role: "user", content: m.content }]
      : m.role === "assistant"
      ? [{ role: "assistant", content: [{ type: "text", text: m.content }] }]
      : []
  )
  if (o.prompt !== undefined) messages.push({ role: "user", content: o.prompt })
  return system === "" ? { messages } : { systemPrompt: system, messages }
}

/**
 * The characters a backend receives for the conversation: what `Turn` counts for an estimate when the backend
 * reports no usage. A context built by `toContext` holds text only and no tools, so its rendering adds nothing.
 */
export const inputChars = (context: ToolTags.Context): number =>
  context.messages.reduce(
    (n, m) =>
      n + (typeof m.content === "string"
        ? m.content.length
        : m.content.reduce((k, part) => k + (part.type === "text" ? part.text.length : 0), 0)),
    context.systemPrompt?.length ?? 0
  )
