/**
 * The backend-neutral service: the server a call goes to, whatever wire protocol it speaks (`AiosBackend` for an
 * AIOS kernel's `/query`, `OpenAiBackend` for an OpenAI-compatible `/v1`). What differs between them is data
 * (`capabilities`), never a branch in the caller. This module also holds the one vocabulary of a call: messages,
 * tools, usage, finish reasons and the chunks of a reply.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as BackendError from "./BackendError.js"
import { toolCallArguments } from "./internal/jsonObject.js"

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------------------------

/**
 * A tool call an assistant message made, in the OpenAI chat format both wires use (`arguments` is JSON text).
 *
 * @since 0.2.0
 */
export const MessageToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})
export type MessageToolCall = typeof MessageToolCall.Type

/**
 * A chat message as a backend receives it (the OpenAI chat format, which `/query` forwards to the provider).
 * `tool_calls` lets an assistant message carry native calls, which OpenAI-compatible servers require before the
 * `tool` messages answering them.
 *
 * @since 0.2.0
 */
export const Message = Schema.Struct({
  role: Schema.Literal("system", "user", "assistant", "tool"),
  content: Schema.NullOr(Schema.String),
  tool_call_id: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  tool_calls: Schema.optional(Schema.Array(MessageToolCall))
})
export type Message = typeof Message.Type

/**
 * A tool offered natively (`toolCalls: "native"`); each wire renders it in its own format.
 *
 * @since 0.2.0
 */
export interface Tool {
  readonly name: string
  readonly description?: string | undefined
  /** The JSON Schema of the arguments object. */
  readonly parameters?: unknown
}

/**
 * Why a reply ended: `toolUse` when it holds calls to run.
 *
 * @since 0.2.0
 */
export type FinishReason = "stop" | "length" | "toolUse"

/**
 * Token counts; `estimated` (about 4 characters a token) when the backend reported none, as AIOS never does.
 *
 * @since 0.2.0
 */
export interface Usage {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly totalTokens: number
  readonly estimated: boolean
}

/**
 * Usage the backend reported.
 *
 * @since 0.2.0
 */
export const reportedUsage = (inputTokens: number, outputTokens: number): Usage => ({
  inputTokens,
  outputTokens,
  totalTokens: inputTokens + outputTokens,
  estimated: false
})

/**
 * Rough token count for backends that report none: about 4 characters a token.
 *
 * @since 0.2.0
 */
export const estimateTokens = (chars: number): number => Math.ceil(chars / 4)

/**
 * Usage estimated from character counts.
 *
 * @since 0.2.0
 */
export const estimatedUsage = (inputChars: number, outputChars: number): Usage => {
  const inputTokens = estimateTokens(inputChars)
  const outputTokens = estimateTokens(outputChars)
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true }
}

/**
 * A model the server serves: its name and (AIOS) backend only; nothing else of the list survives decoding.
 *
 * @since 0.2.0
 */
export interface Model {
  readonly name: string
  readonly backend: string | null
}

/**
 * The server's health.
 *
 * @since 0.2.0
 */
export interface Status {
  readonly ok: boolean
  readonly message: string
  readonly inactiveComponents: ReadonlyArray<string>
}

/**
 * One model call.
 *
 * @since 0.2.0
 */
export interface Request {
  readonly model: string
  readonly messages: ReadonlyArray<Message>
  /** Native tools; empty when tools travel as tags in the text. */
  readonly tools?: ReadonlyArray<Tool> | undefined
  readonly maxTokens?: number | undefined
  readonly temperature?: number | undefined
  /** Overrides `requestTimeoutMs` for this call. */
  readonly timeoutMs?: number | undefined
  /**
   * The turn's deadline, when the call is one attempt of a turn: the call ends by `atMs` (on the `Clock`) or fails
   * with `BackendTimeout` naming `turnTimeoutMs`, like its own time limits, which it shortens.
   */
  readonly deadline?: Deadline | undefined
}

/**
 * A turn's deadline, as its calls see it.
 *
 * @since 0.2.0
 */
export interface Deadline {
  /** When the turn must be over, in `Clock` milliseconds. */
  readonly atMs: number
  /** The configured length (`turnTimeoutMs`), for messages. */
  readonly timeoutMs: number
}

/**
 * A piece of a reply. A backend that answers in one piece (AIOS) gives its whole text as one `TextDelta`, then
 * its native calls, then `Finish`; a streaming one gives them as they arrive. `Finish` is always last.
 *
 * @since 0.2.0
 */
export type Chunk =
  | { readonly _tag: "TextDelta"; readonly text: string }
  /** The model's reasoning, apart from its reply (`reasoning_content` on `/v1`). */
  | { readonly _tag: "ReasoningDelta"; readonly text: string }
  | {
    readonly _tag: "ToolCallDelta"
    readonly index: number
    readonly id?: string | undefined
    readonly name?: string | undefined
    readonly argumentsDelta: string
  }
  | {
    readonly _tag: "Finish"
    /** Undefined when the backend does not say (AIOS never does). */
    readonly reason: FinishReason | undefined
    /** Undefined when the backend reports none (AIOS never does). */
    readonly usage: Usage | undefined
  }

/**
 * What a backend can do, as data.
 *
 * @since 0.2.0
 */
export interface Capabilities {
  /** The reply arrives as it is generated (`/v1`), rather than in one piece (AIOS). */
  readonly streams: boolean
  /** Which wire protocol: for messages and diagnostics only. */
  readonly protocol: "aios" | "openai-compatible"
  /** The endpoint a call goes to, for messages. */
  readonly callEndpoint: string
}

/**
 * @since 0.2.0
 */
export interface Service {
  /** The base URL (no trailing slash) as it may be printed: userinfo and secret query values redacted. Not for requests. */
  readonly url: string
  readonly capabilities: Capabilities
  readonly status: Effect.Effect<Status, BackendError.BackendError>
  /** The models, uncached (see `ModelCatalog`). */
  readonly listModels: Effect.Effect<ReadonlyArray<Model>, BackendError.BackendError>
  /** One model call as chunks. Interruption aborts the HTTP request. */
  readonly stream: (request: Request) => Stream.Stream<Chunk, BackendError.BackendError>
}

/**
 * @since 0.2.0
 */
export class Backend extends Context.Tag("effect-aios/Backend")<Backend, Service>() {}

// ---------------------------------------------------------------------------------------------------------------
// A call, collected
// ---------------------------------------------------------------------------------------------------------------

/**
 * A native tool call, its arguments parsed.
 *
 * @since 0.2.0
 */
export interface ToolCall {
  readonly id: string | undefined
  readonly name: string
  readonly arguments: Readonly<Record<string, unknown>>
}

/**
 * A complete reply.
 *
 * @since 0.2.0
 */
export interface Result {
  readonly model: string
  readonly text: string
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly usage: Usage | undefined
  readonly finishReason: FinishReason | undefined
}

/**
 * Folds the chunks of one reply into a `Result`; tool-call arguments must be a JSON object (or empty).
 *
 * @since 0.2.0
 */
export const collect = (
  chunks: Iterable<Chunk>,
  context: { readonly url: string; readonly model: string; readonly endpoint: string }
): Either.Either<Result, BackendError.MalformedResponse> => {
  let text = ""
  let finish: Extract<Chunk, { _tag: "Finish" }> | undefined
  const calls = new Map<number, { id: string | undefined; name: string; args: string }>()
  for (const chunk of chunks) {
    switch (chunk._tag) {
      case "TextDelta":
        text += chunk.text
        break
      case "ReasoningDelta":
        break
      case "ToolCallDelta": {
        const call = calls.get(chunk.index) ?? { id: undefined, name: "", args: "" }
        calls.set(chunk.index, {
          id: call.id ?? chunk.id,
          name: call.name === "" ? chunk.name ?? "" : call.name,
          args: call.args + chunk.argumentsDelta
        })
        break
      }
      case "Finish":
        finish = chunk
    }
  }
  const toolCalls: Array<ToolCall> = []
  for (const [, call] of [...calls].sort(([a], [b]) => a - b)) {
    const parsed = toolCallArguments(call.args)
    if (parsed._tag === "None") {
      return Either.left(
        new BackendError.MalformedResponse({
          url: context.url,
          model: context.model,
          endpoint: context.endpoint,
          issue: `the arguments of tool call '${call.name}' are not a JSON object${
            finish?.reason === "length" ? " (the reply was cut at the length limit)" : ""
          }`
        })
      )
    }
    toolCalls.push({ id: call.id, name: call.name, arguments: parsed.value })
  }
  return Either.right({ model: context.model, text, toolCalls, usage: finish?.usage, finishReason: finish?.reason })
}

/**
 * One model call, its reply collected.
 *
 * @since 0.2.0
 */
export const call = (request: Request): Effect.Effect<Result, BackendError.BackendError, Backend> =>
  Effect.flatMap(Backend, (backend) =>
    Effect.flatMap(Stream.runCollect(backend.stream(request)), (chunks) =>
      collect(chunks, { url: backend.url, model: request.model, endpoint: backend.capabilities.callEndpoint })))
