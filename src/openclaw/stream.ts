/**
 * The OpenClaw `StreamFn`: runs one `Turn` on the plugin's runtime and maps its events one to one onto OpenClaw's
 * assistant-message events (a `Stream.mapAccum` over the message being built). Translation only: rendering,
 * retries and parsing happen in `Turn`; what a failure means to OpenClaw is `failover.ts`.
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
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import * as Take from "effect/Take"
import type * as Backend from "../Backend.js"
import * as BackendError from "../BackendError.js"
import { Turn, type TurnEvent, type TurnRequest } from "../Turn.js"
import * as Failover from "./failover.js"
import { PROVIDER_ID } from "./models.js"

// ---------------------------------------------------------------------------------------------------------------
// Turn events → OpenClaw events
// ---------------------------------------------------------------------------------------------------------------

/**
 * The state of the message being built. The message itself is one mutable partial, shared by every event (as
 * OpenClaw's own providers do); the state only says which text block is open.
 *
 * @since 0.2.0
 */
export interface Builder {
  readonly message: AssistantMessage
  /** The content index of the open text block, if any. */
  readonly openText: number | undefined
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

const closeText = (b: Builder): readonly [Builder, Array<AssistantMessageEvent>] => {
  if (b.openText === undefined) return [b, []]
  const block = b.message.content[b.openText]
  return [
    { message: b.message, openText: undefined },
    [{ type: "text_end", contentIndex: b.openText, content: block?.type === "text" ? block.text : "", partial: b.message }]
  ]
}

const toolCallAt = (b: Builder, id: string): readonly [number, ToolCall] | undefined => {
  for (let i = b.message.content.length - 1; i >= 0; i--) {
    const block = b.message.content[i]
    if (block?.type === "toolCall" && block.id === id) return [i, block]
  }
  return undefined
}

/**
 * One turn event → the OpenClaw events it stands for.
 *
 * @since 0.2.0
 */
export const step = (b: Builder, event: TurnEvent): readonly [Builder, ReadonlyArray<AssistantMessageEvent>] => {
  const content = b.message.content
  switch (event._tag) {
    case "TextDelta": {
      const out: Array<AssistantMessageEvent> = []
      let index = b.openText
      if (index === undefined) {
        content.push({ type: "text", text: "" })
        index = content.length - 1
        out.push({ type: "text_start", contentIndex: index, partial: b.message })
      }
      const block = content[index]
      if (block?.type === "text") block.text += event.text
      out.push({ type: "text_delta", contentIndex: index, delta: event.text, partial: b.message })
      return [index === b.openText ? b : { message: b.message, openText: index }, out]
    }
    case "ToolCallStart": {
      const [closed, out] = closeText(b)
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
      at[1].arguments = event.arguments
      return [b, [{ type: "toolcall_end", contentIndex: at[0], toolCall: at[1], partial: b.message }]]
    }
    case "InvalidCall":
      // Not executed; its text already reached the reply as text (ToolTags' policy), and Turn logged it.
      return [b, []]
    case "Finish": {
      const [closed, out] = closeText(b)
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

/** The caller's abort signal fired. */
class Aborted extends Data.TaggedError("Aborted") {}

/** Anything else that is not one of our errors: a bad configuration, or a bug. */
const internal = (errorMessage: string, errorType: string): Failover.Emitted => ({
  errorMessage,
  errorCode: "AIOS_INTERNAL",
  errorType
})

/**
 * The one event that ends a failed turn. Our errors carry the code and type that `classifyFailoverReason` maps
 * back to their reason; other failures (a configuration error) are `invalid_request_error`; a defect is named as
 * ours.
 */
const failed = (message: AssistantMessage, cause: Cause.Cause<unknown>): AssistantMessageEvent =>
  Option.match(Cause.failureOption(cause), {
    onSome: (error) =>
      error instanceof Aborted
        ? abortedEvent(message)
        : BackendError.isBackendError(error)
        ? errorEvent(message, Failover.toEmitted(error))
        : errorEvent(message, internal(error instanceof Error ? error.message : String(error), "invalid_request_error")),
    onNone: () =>
      Cause.isInterruptedOnly(cause)
        ? abortedEvent(message)
        : errorEvent(message, internal(`effect-aios internal error: ${Cause.pretty(cause).split("\n")[0]}`, "unknown"))
  })

const isTerminal = (event: AssistantMessageEvent): boolean => event.type === "done" || event.type === "error"

/** Fails with `Aborted` once `signal` fires (at once if it already has). */
const abortOf = (signal: AbortSignal): Effect.Effect<never, Aborted> =>
  Effect.async<never, Aborted>((resume) => {
    const onAbort = () => resume(Effect.fail(new Aborted()))
    if (signal.aborted) return onAbort()
    signal.addEventListener("abort", onAbort, { once: true })
    return Effect.sync(() => signal.removeEventListener("abort", onAbort))
  })

// ---------------------------------------------------------------------------------------------------------------
// The StreamFn
// ---------------------------------------------------------------------------------------------------------------

/**
 * One turn as OpenClaw events after `start`: every failure becomes the final `error` event, and an abort
 * interrupts the turn (its HTTP request, or its retry wait) and ends it with an `aborted` one.
 *
 * @since 0.2.0
 */
export const events = (
  request: TurnRequest,
  message: AssistantMessage,
  signal: AbortSignal | undefined
): Stream.Stream<AssistantMessageEvent, never, Turn> => {
  if (signal?.aborted) return Stream.make(abortedEvent(message))
  const turn = Stream.unwrap(Effect.map(Turn, (t) => t.run(request))).pipe(
    Stream.mapAccum<Builder, TurnEvent, ReadonlyArray<AssistantMessageEvent>>({ message, openText: undefined }, step),
    Stream.mapConcat(identity)
  )
  return (signal === undefined ? turn : Stream.interruptWhen(turn, abortOf(signal))).pipe(
    Stream.catchAllCause((cause) => Stream.make(failed(message, cause))),
    // Nothing after the terminal event, even an abort that lands just after `done`.
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

/**
 * The OpenClaw `StreamFn`. The turn starts on the call, whether or not anyone iterates; events wait in a queue
 * for the consumer. It never throws and its `result()` never rejects: a failure is an `error` event, an abort
 * (`options.signal`) an `aborted` one, emitted at once, also during a retry wait.
 *
 * @since 0.2.0
 */
export const makeStreamFn = (runtime: TurnRuntime): StreamFn =>
(model: Model, context: Context, options?: SimpleStreamOptions): AssistantMessageEventStreamLike => {
  // Read defensively: the host's values are trusted by type only, and this function must not throw.
  const message = emptyMessage({
    api: model?.api ?? "openai-completions",
    provider: model?.provider ?? PROVIDER_ID,
    id: typeof model?.id === "string" ? model.id : ""
  }, Date.now())
  const queue = Effect.runSync(Queue.unbounded<Take.Take<AssistantMessageEvent>>())
  const program = Queue.offer(queue, Take.of<AssistantMessageEvent>({ type: "start", partial: message })).pipe(
    Effect.zipRight(Effect.suspend(runtime)),
    Effect.flatMap((rt) =>
      Effect.provide(
        Effect.suspend(() =>
          Stream.runIntoQueue(events({ model: message.model, context, turn: options?.sessionId }, message, options?.signal), queue)
        ),
        rt
      )
    ),
    Effect.catchAllCause((cause) => Queue.offerAll(queue, [Take.of(failed(message, cause)), Take.end])),
    Effect.as(message)
  )
  const result = Effect.runPromise(program)
  const iterable = Stream.toAsyncIterable(Stream.flattenTake(Stream.fromQueue(queue)))
  return { [Symbol.asyncIterator]: () => iterable[Symbol.asyncIterator](), result: () => result }
}
