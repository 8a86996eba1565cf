/**
 * The `/v1` wire formats `OpenAiBackend` reads and sends (only what it reads: everything else in a body is
 * dropped by decoding), and the readings of an error body and a complete completion.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Backend from "../../Backend.js"
import type * as Http from "../http.js"

/** `GET /models`; its entries are checked one by one (`ModelList.check` on `id`). */
export const ModelsResponse = Schema.Struct({ data: Schema.Array(Schema.Unknown) })

/** `POST /chat/completions` body, as we send it. */
export interface ChatCompletionsBody {
  readonly model: string
  readonly messages: ReadonlyArray<Backend.Message>
  readonly stream: true
  readonly stream_options: { readonly include_usage: true }
  readonly tools?: ReadonlyArray<Http.WireTool>
  readonly max_tokens?: number
  readonly temperature?: number
}

export const WireUsage = Schema.Struct({ prompt_tokens: Schema.Number, completion_tokens: Schema.Number })

const ToolCallDeltaWire = Schema.Struct({
  index: Schema.optional(Schema.Int),
  id: Schema.optional(Schema.NullOr(Schema.String)),
  function: Schema.optional(Schema.NullOr(Schema.Struct({
    name: Schema.optional(Schema.NullOr(Schema.String)),
    arguments: Schema.optional(Schema.NullOr(Schema.String))
  })))
})

/**
 * The model's reasoning beside its reply: `reasoning_content` (DeepSeek, vLLM, llama.cpp) or `reasoning`
 * (OpenRouter, Ollama). Unknown, so a server whose `reasoning` is some other shape still decodes.
 */
const reasoningFields = {
  reasoning_content: Schema.optional(Schema.Unknown),
  reasoning: Schema.optional(Schema.Unknown)
}

/** The reasoning text of a delta or message, when it has some. */
export const reasoningOf = (fields: { readonly reasoning_content?: unknown; readonly reasoning?: unknown }): string =>
  typeof fields.reasoning_content === "string"
    ? fields.reasoning_content
    : typeof fields.reasoning === "string"
    ? fields.reasoning
    : ""

/** One `data:` event of a streamed completion. */
export const ChatCompletionChunk = Schema.Struct({
  choices: Schema.optionalWith(Schema.NullOr(Schema.Array(Schema.Struct({
    index: Schema.optional(Schema.Int),
    delta: Schema.optional(Schema.NullOr(Schema.Struct({
      content: Schema.optional(Schema.NullOr(Schema.String)),
      ...reasoningFields,
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(ToolCallDeltaWire)))
    }))),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  }))), { default: () => null }),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

/** A complete (non-streamed) completion, for servers that answer JSON although asked to stream. */
export const ChatCompletion = Schema.Struct({
  choices: Schema.Array(Schema.Struct({
    index: Schema.optional(Schema.Int),
    message: Schema.Struct({
      content: Schema.optional(Schema.NullOr(Schema.String)),
      ...reasoningFields,
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
        id: Schema.optional(Schema.NullOr(Schema.String)),
        function: Schema.Struct({
          name: Schema.String,
          arguments: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
        })
      }))))
    }),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  })),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

/** OpenAI's error object; some servers send a bare string instead. */
const ErrorObject = Schema.Struct({
  message: Schema.optional(Schema.NullOr(Schema.String)),
  type: Schema.optional(Schema.NullOr(Schema.String)),
  code: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Number))),
  status: Schema.optional(Schema.NullOr(Schema.Number))
})
const ErrorBody = Schema.Struct({ error: Schema.Union(ErrorObject, Schema.String) })
/** FastAPI-style servers answer `{"detail": …}`, others `{"message": …}`. */
const DetailBody = Schema.Struct({ detail: Schema.String })
const MessageBody = Schema.Struct({ message: Schema.String })

/** What an error body says (its words not yet quoted: the caller clears them of secrets). */
export interface ServerError {
  readonly reason: string
  readonly errorType: string | undefined
  /** A status the body itself names (`error.status`, a numeric `error.code`). */
  readonly status: number | undefined
}

export const parseJson = (text: string): Option.Option<unknown> => Either.getRight(Either.try(() => JSON.parse(text) as unknown))

/** Reads an error body: OpenAI's `{error:{message,type,code}}`, `{error:"…"}`, `{detail}`, `{message}` or text. */
export const serverError = (text: string): ServerError => {
  const plain = (reason: string): ServerError => ({ reason, errorType: undefined, status: undefined })
  const json = parseJson(text)
  if (Option.isNone(json)) return plain(text.trim())
  const body = Schema.decodeUnknownOption(ErrorBody)(json.value)
  if (Option.isSome(body)) {
    const error = body.value.error
    if (typeof error === "string") return plain(error)
    const code = error.code ?? undefined
    const numeric = typeof code === "number" ? code : error.status ?? undefined
    return {
      reason: error.message ?? "",
      // `code` is the more specific of the two in OpenAI's scheme (`rate_limit_exceeded` vs `requests`).
      errorType: (typeof code === "string" && code !== "" ? code : undefined) ?? (error.type || undefined),
      status: numeric !== undefined && numeric >= 400 && numeric <= 599 ? numeric : undefined
    }
  }
  const detail = Schema.decodeUnknownOption(DetailBody)(json.value)
  if (Option.isSome(detail)) return plain(detail.value.detail)
  const message = Schema.decodeUnknownOption(MessageBody)(json.value)
  return plain(Option.isSome(message) ? message.value.message : text.trim())
}

export const hasError = (value: unknown): boolean =>
  value !== null && typeof value === "object" && "error" in value && value.error !== null && value.error !== undefined

/** The HTTP status an in-stream error stands for, when the event names none. */
export const statusOfType = (errorType: string | undefined): number => {
  const type = errorType?.toLowerCase() ?? ""
  if (/rate_limit|too_many_requests|insufficient_quota|^requests$|^tokens$/.test(type)) return 429
  if (/invalid_api_key|authentication/.test(type)) return 401
  if (/permission/.test(type)) return 403
  if (/model_not_found/.test(type)) return 404
  if (/invalid_request|context_length/.test(type)) return 400
  if (/overloaded|unavailable/.test(type)) return 503
  if (/timeout/.test(type)) return 408
  return 500
}

// What servers call the end of a reply; anything else is no reason given.
const finishReasons = new Map<string, Backend.FinishReason>([
  ["stop", "stop"], ["eos", "stop"], ["end_turn", "stop"],
  ["length", "length"], ["max_tokens", "length"],
  ["tool_calls", "toolUse"], ["function_call", "toolUse"], ["tool_use", "toolUse"]
])

export const finishReason = (raw: string | null | undefined): Backend.FinishReason | undefined =>
  raw == null ? undefined : finishReasons.get(raw)

export const toUsage = (usage: typeof WireUsage.Type): Backend.Usage =>
  Backend.reportedUsage(usage.prompt_tokens, usage.completion_tokens)

/** A complete completion as stream chunks: reasoning, text, calls, `Finish`. */
export const completionChunks = (completion: typeof ChatCompletion.Type): ReadonlyArray<Backend.Chunk> => {
  const choice = completion.choices.find((c) => (c.index ?? 0) === 0)
  const reasoning = choice === undefined ? "" : reasoningOf(choice.message)
  const text = choice?.message.content ?? ""
  return [
    ...(reasoning.length > 0 ? [{ _tag: "ReasoningDelta" as const, text: reasoning }] : []),
    ...(text.length > 0 ? [{ _tag: "TextDelta" as const, text }] : []),
    ...(choice?.message.tool_calls ?? []).map((call, index) => ({
      _tag: "ToolCallDelta" as const,
      index,
      id: call.id ?? undefined,
      name: call.function.name,
      argumentsDelta: call.function.arguments ?? ""
    })),
    {
      _tag: "Finish" as const,
      reason: finishReason(choice?.finish_reason),
      usage: completion.usage ? toUsage(completion.usage) : undefined
    }
  ]
}
