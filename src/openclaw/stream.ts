/**
 * The OpenClaw `StreamFn`: runs one `Turn` on the plugin's runtime and maps its events one to one onto OpenClaw's
 * assistant-message events (a fold over the message being built). Translation only: rendering, retries and parsing
 * happen in `Turn`; what a failure means to OpenClaw is `failover.ts`.
 *
 * @since 0.2.0
 */
import type {
  AssistantMessage,
  AssistantMessageEvent,
  AssistantMessageEventStreamLike,
  Context,
  Model,
  SimpleStreamOptions,
  StreamFn,
  ToolCall
} from "@openclaw/ai"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import type * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import type * as Backend from "../Backend.js"
import * as BackendError from "../BackendError.js"
import { Turn, type TurnEvent, type TurnRequest } from "../Turn.js"
import type { Outcome } from "../TurnRetry.js"
import * as Failover from "./failover.js"
import { PROVIDER_ID } from "./models.js"

// ---------------------------------------------------------------------------------------------------------------
// Turn events → OpenClaw events
// ---------------------------------------------------------------------------------------------------------------

/**
 * The state of the message being built. The message itself is one mutable partial, shared by every event (as
 * OpenClaw's own providers do); the state only says which text or thinking block is open.
 *
 * @since 0.2.0
 */
export interface Builder {
  readonly message: AssistantMessage
  /** The content index of the open text block, if any. */
  readonly openText: number | undefined
  /** The content index of the open thinking block, if any. */
  readonly openThinking?: number | undefined
}

/**
 * An empty assistant message for `model`.
 *
 * @since 0.2.0
 */
export const emptyMessage = (model: Pick<Model, "api" | "provider" | "id">, now: number): AssistantMessage => ({
  role: "assistant",
  content: [],
  api: model.api,
  provider: model.provider,
  model: model.id,
  usage: toUsage({ inputTokens: 0, outputTokens: 0, totalTokens: 0, estimated: true }),
  stopReason: "stop",
  timestamp: now
})

const toUsage = (usage: Backend.Usage): AssistantMessage["usage"] => ({
  input: usage.inputTokens,
  output: usage.outputTokens,
  cacheRead: 0,
  cacheWrite: 0,
  totalTokens: usage.totalTokens,
  cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 }
})

/** Closes the open text and thinking blocks (at most one is open). */
const close = (b: Builder): readonly [Builder, Array<AssistantMessageEvent>] => {
  const out: Array<AssistantMessageEvent> = []
  if (b.openText !== undefined) {
    const block = b.message.content[b.openText]
    out.push({ type: "text_end", contentIndex: b.openText, content: block?.type === "text" ? block.text : "", partial: b.message })
  }
  if (b.openThinking !== undefined) {
    const block = b.message.content[b.openThinking]
    out.push({
      type: "thinking_end",
      contentIndex: b.openThinking,
      content: block?.type === "thinking" ? block.thinking : "",
      partial: b.message
    })
  }
  return out.length === 0 ? [b, out] : [{ message: b.message, openText: undefined, openThinking: undefined }, out]
}

const toolCallAt = (b: Builder, id: string): readonly [number, ToolCall] | undefined => {
  for (let i = b.message.content.length - 1; i >= 0; i--) {
    const block = b.message.content[i]
    if (block?.type === "toolCall" && block.id === id) return [i, block]
  }
  return undefined
}

/** Appends `delta` to the open block of `kind`, first closing the other kind's and opening one when none is. */
const appendTo = (
  b: Builder,
  kind: "text" | "thinking",
  delta: string
): readonly [Builder, ReadonlyArray<AssistantMessageEvent>] => {
  const content = b.message.content
  const openIndex = kind === "text" ? b.openText : b.openThinking
  const [, out] = openIndex === undefined ? close(b) : [b, []]
  let index = openIndex
  if (index === undefined) {
    content.push(kind === "text" ? { type: "text", text: "" } : { type: "thinking", thinking: "" })
    index = content.length - 1
    out.push({ type: `${kind}_start`, contentIndex: index, partial: b.message })
  }
  const block = content[index]
  if (block?.type === "text") block.text += delta
  else if (block?.type === "thinking") block.thinking += delta
  out.push({ type: `${kind}_delta`, contentIndex: index, delta, partial: b.message })
  const opened: Builder = kind === "text"
    ? { message: b.message, openText: index, openThinking: undefined }
    : { message: b.message, openText: undefined, openThinking: index }
  return [openIndex === undefined ? opened : b, out]
}

/**
 * One turn event → the OpenClaw events it stands for.
 *
 * @since 0.2.0
 */
export const step = (b: Builder, event: TurnEvent): readonly [Builder, ReadonlyArray<AssistantMessageEvent>] => {
  const content = b.message.content
  switch (event._tag) {
    case "TextDelta":
      return appendTo(b, "text", event.text)
    case "ThinkingDelta":
      return appendTo(b, "thinking", event.text)
    case "ToolCallStart": {
      const [closed, out] = close(b)
      content.push({ type: "toolCall", id: event.id, name: event.name, arguments: {} })
      out.push({ type: "toolcall_start", contentIndex: content.length - 1, partial: b.message })
      return [closed, out]
    }
    case "ToolCallDelta": {
      const at = toolCallAt(b, event.id)
      if (at === undefined) return [b, []]
      return [b, [{ type: "toolcall_delta", contentIndex: at[0], delta: event.argumentsDelta, partial: b.message }]]
    }
    case "ToolCallEnd": {
      const at = toolCallAt(b, event.id)
      if (at === undefined) return [b, []]
      // A native call's name may arrive after its start.
      at[1].name = event.name
      at[1].arguments = event.arguments
      return [b, [{ type: "toolcall_end", contentIndex: at[0], toolCall: at[1], partial: b.message }]]
    }
    case "Finish": {
      const [closed, out] = close(b)
      b.message.usage = toUsage(event.usage)
      b.message.stopReason = event.reason
      out.push({ type: "done", reason: event.reason, message: b.message })
      return [closed, out]
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Terminal events
// ---------------------------------------------------------------------------------------------------------------

/**
 * The error event for a failed turn: the message carries `errorMessage`, `errorCode` and `errorType`.
 *
 * @since 0.2.0
 */
export const errorEvent = (message: AssistantMessage, emitted: Failover.Emitted): AssistantMessageEvent => {
  Object.assign(message, { stopReason: "error", ...emitted })
  return { type: "error", reason: "error", error: message }
}

const abortedEvent = (message: AssistantMessage): AssistantMessageEvent => {
  Object.assign(message, { stopReason: "aborted", errorMessage: "Request was aborted" })
  return { type: "error", reason: "aborted", error: message }
}

/** Anything else that is not one of our errors: a bad configuration, or a bug. */
const internal = (errorMessage: string, errorType: string): Failover.Emitted => ({
  errorMessage,
  errorCode: "AIOS_INTERNAL",
  errorType
})

/**
 * The one event that ends a failed turn. Our errors carry the code and type that `classifyFailoverReason` maps
 * back to the reason `Failover.toEmitted` chose (given how the turn's retries ended, and whether output had
 * already gone out); other failures (a configuration error) are `invalid_request_error`; a defect is named as
 * ours.
 */
const failed = (message: AssistantMessage, cause: Cause.Cause<unknown>, outcome?: Outcome): AssistantMessageEvent =>
  Option.match(Cause.failureOption(cause), {
    onSome: (error) =>
      BackendError.isBackendError(error)
        ? errorEvent(message, Failover.toEmitted(error, { outcome, outputSent: message.content.length > 0 }))
        : errorEvent(message, internal(error instanceof Error ? error.message : String(error), "invalid_request_error")),
    onNone: () =>
      Cause.isInterruptedOnly(cause)
        ? abortedEvent(message)
        : errorEvent(message, internal(`effect-aios internal error: ${Cause.pretty(cause).split("\n")[0]}`, "unknown"))
  })

const isTerminal = (event: AssistantMessageEvent): boolean => event.type === "done" || event.type === "error"

// ---------------------------------------------------------------------------------------------------------------
// The StreamFn
// ---------------------------------------------------------------------------------------------------------------

/**
 * One turn as OpenClaw events after `start`: every failure becomes the final `error` event.
 *
 * @since 0.2.0
 */
export const events = (request: TurnRequest, message: AssistantMessage): Stream.Stream<AssistantMessageEvent, never, Turn> => {
  let outcome: Outcome | undefined
  const told: TurnRequest = {
    ...request,
    onGiveUp: (o) => {
      outcome = o
      request.onGiveUp?.(o)
    }
  }
  return Stream.unwrap(Effect.map(Turn, (t) => {
    let builder: Builder = { message, openText: undefined }
    return Stream.mapConcat(t.run(told), (event) => {
      const [next, out] = step(builder, event)
      builder = next
      return out
    })
  })).pipe(
    Stream.catchAllCause((cause) => Stream.make(failed(message, cause, outcome))),
    Stream.takeUntil(isTerminal)
  )
}

/**
 * Where the stream function gets `Turn`: the plugin's runtime, built on first use (a `ManagedRuntime`'s
 * `runtimeEffect`); it fails when the configuration is invalid.
 *
 * @since 0.2.0
 */
export type TurnRuntime = () => Effect.Effect<Runtime.Runtime<Turn>, unknown>

/** The caller's arguments, read once and checked. */
interface Checked {
  readonly model: Pick<Model, "api" | "provider" | "id">
  readonly context: TurnRequest["context"]
  readonly signal: AbortSignal | undefined
  readonly sessionId: string | undefined
}

const field = (u: unknown, key: string): unknown =>
  u !== null && (typeof u === "object" || typeof u === "function") ? (u as Record<string, unknown>)[key] : undefined

const kindOf = (u: unknown): string => (u === null ? "null" : Array.isArray(u) ? "an array" : typeof u)

const isSignal = (u: unknown): u is AbortSignal =>
  typeof field(u, "aborted") === "boolean" && typeof field(u, "addEventListener") === "function" &&
  typeof field(u, "removeEventListener") === "function"

/**
 * The host's arguments, trusted by type only: read once each (a getter that throws, a hostile proxy, a value of
 * the wrong type are a problem named in words, never a throw), the context copied so later reads see the same.
 */
const check = (model: unknown, context: unknown, options: unknown): Checked | { readonly problem: string } => {
  try {
    const id = field(model, "id")
    const api = field(model, "api")
    const provider = field(model, "provider")
    const checkedModel = {
      api: (typeof api === "string" ? api : "openai-completions") as Model["api"],
      provider: typeof provider === "string" ? provider : PROVIDER_ID,
      id: typeof id === "string" ? id : ""
    }
    if (typeof id !== "string" || id.trim() === "") return { problem: `model.id must be a model name (got ${kindOf(id)})` }
    if (options !== undefined && options !== null && typeof options !== "object") {
      return { problem: `options must be an object (got ${kindOf(options)})` }
    }
    const signal = field(options, "signal")
    if (signal !== undefined && !isSignal(signal)) return { problem: `options.signal is not an AbortSignal (got ${kindOf(signal)})` }
    const messages = field(context, "messages")
    if (!Array.isArray(messages)) return { problem: `context.messages must be an array (got ${kindOf(messages)})` }
    const tools = field(context, "tools")
    if (tools !== undefined && !Array.isArray(tools)) return { problem: `context.tools must be an array (got ${kindOf(tools)})` }
    const systemPrompt = field(context, "systemPrompt")
    const sessionId = field(options, "sessionId")
    return {
      model: checkedModel,
      context: {
        systemPrompt: typeof systemPrompt === "string" ? systemPrompt : undefined,
        messages: Array.from(messages as ReadonlyArray<TurnRequest["context"]["messages"][number]>),
        tools: tools === undefined ? undefined : Array.from(tools as NonNullable<TurnRequest["context"]["tools"]>)
      },
      signal: signal as AbortSignal | undefined,
      sessionId: typeof sessionId === "string" ? sessionId : undefined
    }
  } catch (e) {
    return { problem: `its arguments could not be read (${e instanceof Error ? e.message : String(e)})` }
  }
}

/**
 * The OpenClaw `StreamFn`. The turn starts on the call, whether or not anyone iterates; events wait in a mailbox
 * for the consumer. It never throws and its `result()` never rejects: a failure is an `error` event, an abort
 * (`options.signal`) an `aborted` one, emitted at once, also during a retry wait. Arguments it cannot use (a
 * `signal` that is not an `AbortSignal`, a model without a name, a context without messages) are an
 * `invalid_request_error`, and nothing is sent.
 *
 * @since 0.2.0
 */
export const makeStreamFn = (runtime: TurnRuntime): StreamFn =>
(model: Model, context: Context, options?: SimpleStreamOptions): AssistantMessageEventStreamLike => {
  const checked = check(model, context, options)
  const message = emptyMessage(
    "problem" in checked ? { api: "openai-completions", provider: PROVIDER_ID, id: "" } : checked.model,
    Date.now()
  )
  const mailbox = Effect.runSync(Mailbox.make<AssistantMessageEvent>())
  // Set as the terminal event is queued (uninterruptibly, so the two cannot part).
  let settled = false
  const emit = (event: AssistantMessageEvent) =>
    Effect.uninterruptible(Effect.suspend(() => {
      settled ||= isTerminal(event)
      return mailbox.offer(event)
    }))
  // The final event, unless the turn already ended: an abort or a failure landing after `done` adds nothing.
  const last = (event: () => AssistantMessageEvent) => Effect.suspend(() => (settled ? Effect.void : emit(event())))
  const signal = "problem" in checked ? undefined : checked.signal
  const turn = "problem" in checked
    ? emit(errorEvent(message, {
      errorMessage: `effect-aios was given an invalid request: ${checked.problem}. Nothing was sent.`,
      errorCode: Failover.invalidRequestCode,
      errorType: "invalid_request_error"
    }))
    : signal?.aborted
    ? emit(abortedEvent(message))
    : Effect.flatMap(Effect.suspend(runtime), (rt) =>
      Effect.provide(
        Stream.runForEach(events({ model: checked.model.id, context: checked.context, turn: checked.sessionId }, message), emit),
        rt
      ))
  const program = emit({ type: "start", partial: message }).pipe(
    Effect.zipRight(turn),
    Effect.catchAllCause((cause) => last(() => failed(message, cause))),
    // The caller's abort interrupts the turn wherever it is (its request, a retry wait).
    Effect.onInterrupt(() => last(() => abortedEvent(message))),
    Effect.ensuring(mailbox.end)
  )
  const result = Effect.runPromiseExit(program, signal === undefined ? {} : { signal }).then(() => message)
  const iterable = Stream.toAsyncIterable(Mailbox.toStream(mailbox))
  return { [Symbol.asyncIterator]: () => iterable[Symbol.asyncIterator](), result: () => result }
}
