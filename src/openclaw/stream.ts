/**
 * Turn events → OpenClaw's assistant-message event protocol, one to one, and the `StreamFn` that runs a turn
 * on the plugin's runtime. Translation only: rendering, retries and parsing happen in `Turn`.
 *
 * @since 0.1.0
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
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Failover from "../Failover.js"
import type { AiosConfigError } from "../AiosConfig.js"
import { isKernelError, type KernelError as AnyKernelError } from "../KernelError.js"
import { Turn, type TurnEvent, type TurnUsage } from "../Turn.js"
import { EventStream } from "../internal/eventStream.js"

/** The state of the message being built: one mutable partial, shared by every event (as OpenClaw's own providers do). */
export interface Builder {
  readonly message: AssistantMessage
  /** The content index of the open text block, if any. */
  openText: number | undefined
}

/** An empty assistant message for `model`. */
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

const toUsage = (usage: TurnUsage): AssistantMessage["usage"] => ({
  input: usage.inputTokens,
  output: usage.outputTokens,
  cacheRead: 0,
  cacheWrite: 0,
  totalTokens: usage.totalTokens,
  cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 }
})

const closeText = (b: Builder): Array<AssistantMessageEvent> => {
  if (b.openText === undefined) return []
  const index = b.openText
  b.openText = undefined
  const block = b.message.content[index]
  return [{ type: "text_end", contentIndex: index, content: block?.type === "text" ? block.text : "", partial: b.message }]
}

const toolCallAt = (b: Builder, id: string): [number, ToolCall] | undefined => {
  for (let i = b.message.content.length - 1; i >= 0; i--) {
    const block = b.message.content[i]
    if (block?.type === "toolCall" && block.id === id) return [i, block]
  }
  return undefined
}

/**
 * One turn event → the OpenClaw events it stands for (a `mapAccum`-style step over the builder).
 *
 * @since 0.1.0
 */
export const step = (b: Builder, event: TurnEvent): readonly [Builder, ReadonlyArray<AssistantMessageEvent>] => {
  switch (event._tag) {
    case "TextDelta": {
      const out: Array<AssistantMessageEvent> = []
      if (b.openText === undefined) {
        b.message.content.push({ type: "text", text: "" })
        b.openText = b.message.content.length - 1
        out.push({ type: "text_start", contentIndex: b.openText, partial: b.message })
      }
      const block = b.message.content[b.openText]
      if (block?.type === "text") block.text += event.text
      out.push({ type: "text_delta", contentIndex: b.openText, delta: event.text, partial: b.message })
      return [b, out]
    }
    case "ToolCallStart": {
      const out = closeText(b)
      b.message.content.push({ type: "toolCall", id: event.id, name: event.name, arguments: {} })
      out.push({ type: "toolcall_start", contentIndex: b.message.content.length - 1, partial: b.message })
      return [b, out]
    }
    case "ToolCallDelta": {
      const at = toolCallAt(b, event.id)
      return [b, at === undefined ? [] : [{ type: "toolcall_delta", contentIndex: at[0], delta: event.argumentsDelta, partial: b.message }]]
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
      const out = closeText(b)
      b.message.usage = toUsage(event.usage)
      b.message.stopReason = event.reason
      out.push({ type: "done", reason: event.reason, message: b.message })
      return [b, out]
    }
  }
}

/**
 * The error event for a failed turn: the user-facing message plus the `errorCode` / `errorType` that
 * `classifyFailoverReason` maps back to the same failover reason.
 *
 * @since 0.1.0
 */
export const errorEvent = (b: Builder, error: AnyKernelError): AssistantMessageEvent => {
  const emitted = Failover.toEmitted(error)
  Object.assign(b.message, { stopReason: "error", ...emitted })
  return { type: "error", reason: "error", error: b.message }
}

/** The error event for anything that is not a kernel error (a bug, a bad configuration). */
export const failureEvent = (b: Builder, message: string, errorType = "unknown"): AssistantMessageEvent => {
  Object.assign(b.message, { stopReason: "error", errorMessage: message, errorCode: "AIOS_INTERNAL", errorType })
  return { type: "error", reason: "error", error: b.message }
}

const abortedEvent = (b: Builder): AssistantMessageEvent => {
  Object.assign(b.message, { stopReason: "aborted", errorMessage: "Request was aborted" })
  return { type: "error", reason: "aborted", error: b.message }
}

/** What the stream function needs from the plugin: a way to run effects that need `Turn`. */
export interface TurnRunner {
  readonly runFork: <A, E>(effect: Effect.Effect<A, E, Turn>) => Fiber.RuntimeFiber<A, E | AiosConfigError>
}

/**
 * The OpenClaw `StreamFn`: runs one `Turn` and maps its events. Never throws; a failure is an `error` event,
 * an abort (`options.signal`) an `aborted` one, emitted at once, also during a retry wait.
 *
 * @since 0.1.0
 */
export const makeStreamFn = (runner: () => TurnRunner): StreamFn =>
(model: Model, context: Context, options?: SimpleStreamOptions): AssistantMessageEventStreamLike => {
  const out = new EventStream<AssistantMessageEvent, AssistantMessage>()
  // Read defensively: the host's values are trusted by type only, and this function must not throw.
  const identity = {
    api: model?.api ?? "openai-completions",
    provider: model?.provider ?? "aios",
    id: typeof model?.id === "string" ? model.id : ""
  }
  const builder: Builder = { message: emptyMessage(identity, Date.now()), openText: undefined }
  const fail = (event: AssistantMessageEvent) => {
    out.push(event)
    out.end(builder.message)
  }
  try {
    out.push({ type: "start", partial: builder.message })
    const signal = options?.signal
    if (signal?.aborted) {
      fail(abortedEvent(builder))
      return out
    }
    // `runWith` rather than `Stream.mapAccum` over `run`: the same `step`, without a Stream's fixed cost per turn.
    const program = Effect.flatMap(Turn, (turn) =>
      turn.runWith({ model: identity.id, context, turn: options?.sessionId }, (event) => {
        for (const e of step(builder, event)[1]) out.push(e)
      }))
    const fiber = runner().runFork(program)
    const onAbort = () => {
      if (out.isEnded) return
      fail(abortedEvent(builder))
      fiber.unsafeInterruptAsFork(fiber.id())
    }
    signal?.addEventListener("abort", onAbort, { once: true })
    fiber.addObserver((exit) => {
      signal?.removeEventListener("abort", onAbort)
      if (out.isEnded) return
      if (Exit.isSuccess(exit)) return out.end(builder.message)
      const failure = Cause.failureOption(exit.cause)
      fail(
        Option.isSome(failure)
          ? isKernelError(failure.value)
            ? errorEvent(builder, failure.value)
            : failureEvent(builder, failure.value.message, "invalid_request_error")
          : Cause.isInterruptedOnly(exit.cause)
          ? abortedEvent(builder)
          : failureEvent(builder, `effect-aios internal error: ${Cause.pretty(exit.cause).split("\n")[0]}`)
      )
    })
  } catch (e) {
    fail(failureEvent(builder, e instanceof Error ? e.message : String(e), "invalid_request_error"))
  }
  return out
}
