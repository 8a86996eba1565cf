/**
 * One model call of an agent loop, end to end, as a `Stream` of turn events: the conversation rendered for the
 * backend (tools as a system-prompt section, or natively), the call under the turn's retry budget and deadline,
 * and the reply parsed into text, thinking and tool calls as it arrives. The same path for every backend: one
 * that answers in one piece is a stream of one burst.
 *
 * Calls the model made are the host's to judge: a call to a tool the turn does not offer, or one whose markup or
 * arguments are broken, is passed on as a call (with what could be read of its arguments), so the host answers
 * the model ("tool not found", a validation error) and the loop goes on. Text is never dropped: a broken block
 * without a tool name comes back as text.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { AiosConfig } from "./AiosConfig.js"
import * as Backend from "./Backend.js"
import * as BackendError from "./BackendError.js"
import { toolCallArguments } from "./internal/jsonObject.js"
import { makeThinkSplitter, type ThinkSplitter } from "./internal/turn/think.js"
import { ModelCatalog } from "./ModelCatalog.js"
import * as ToolTags from "./ToolTags.js"
import { type Meta, type Outcome, TurnRetry } from "./TurnRetry.js"

/**
 * The end of a turn: `toolUse` when the reply holds calls to run.
 *
 * @since 0.1.0
 */
export interface Finish {
  readonly _tag: "Finish"
  readonly reason: Backend.FinishReason
  readonly usage: Backend.Usage
}

/**
 * The model's reasoning, apart from its reply (`reasoning_content` deltas, `<think>` sections) under
 * `thinking: "events"`.
 *
 * @since 0.2.0
 */
export interface ThinkingDelta {
  readonly _tag: "ThinkingDelta"
  readonly text: string
}

/**
 * What a turn emits: text and thinking as they become certain, each tool call as start / arguments / end with
 * the same alphanumeric id, then `Finish`.
 *
 * @since 0.1.0
 */
export type TurnEvent =
  | ToolTags.TextDelta
  | ThinkingDelta
  | ToolTags.ToolCallStart
  | ToolTags.ToolCallDelta
  | ToolTags.ToolCallEnd
  | Finish

/**
 * One turn's request.
 *
 * @since 0.1.0
 */
export interface TurnRequest {
  /** The backend's model name. */
  readonly model: string
  readonly context: ToolTags.Context
  /** A label for logs and metrics; default a counter. */
  readonly turn?: string | undefined
  /** Overrides `AiosConfig.toolCalls` for this turn. */
  readonly toolCalls?: "tags" | "native" | undefined
  readonly maxTokens?: number | undefined
  readonly temperature?: number | undefined
  /** Overrides `requestTimeoutMs` for each attempt. */
  readonly timeoutMs?: number | undefined
  /** Told of each retry of this turn (see `TurnRetry.Meta.onRetry`). */
  readonly onRetry?: ((retry: { readonly attempt: number; readonly delayMs: number }) => void) | undefined
  /** Told once how a failed turn ended: attempts, time, why (see `TurnRetry.Outcome`). */
  readonly onGiveUp?: ((outcome: Outcome) => void) | undefined
}

/**
 * @since 0.1.0
 */
export interface Service {
  /**
   * Runs one turn. Fails with the last `BackendError` once the turn's retry budget is spent, or with a
   * `BackendTimeout` when its deadline (`turnTimeoutMs`) passes.
   */
  readonly run: (request: TurnRequest) => Stream.Stream<TurnEvent, BackendError.BackendError>
}

/**
 * @since 0.1.0
 */
export class Turn extends Context.Tag("effect-aios/Turn")<Turn, Service>() {}

/** A native call being assembled from its deltas. */
interface NativeCall {
  readonly id: string
  name: string
  args: string
}

/** A warning found while parsing, logged by the step that found it. */
interface Warning {
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/**
 * One run's parse state: the tag parser, the think splitter, native calls being assembled, and counts for usage.
 * Mutable, and made afresh for each run of the stream, so a re-run turn starts clean.
 */
interface State {
  readonly parser: ToolTags.StreamParser
  /** Splits `<think>` sections out of the parser's text (`thinking: "events"` only). */
  readonly splitter: ThinkSplitter | undefined
  readonly native: Map<number, NativeCall>
  /** `thinking: "text"`: a `<think>` opened around `ReasoningDelta`s that is not closed yet. */
  reasoningOpen: boolean
  outputChars: number
  calls: number
  warnings: Array<Warning>
}

/** What a turn needs once its request is rendered. */
interface Prepared {
  readonly request: TurnRequest
  readonly mode: "tags" | "native"
  readonly call: Backend.Request
  readonly tools: ReadonlyArray<ToolTags.ToolDefinition>
  readonly inputChars: number
}

/** The longest tool name of an invalid call that is passed on as a call. */
const MAX_PASSED_NAME = 256

/** Arguments as JSON text; what cannot be written (nested too deeply) is `{}`, with a warning. */
const argumentsText = (state: State, name: string, args: Record<string, unknown>): readonly [string, Record<string, unknown>] => {
  try {
    return [JSON.stringify(args), args]
  } catch (e) {
    state.warnings.push({
      message: "the arguments of a tool call cannot be written as JSON; passed on as {}",
      annotations: { tool: name, error: e instanceof Error ? e.message : String(e) }
    })
    return ["{}", {}]
  }
}

/** Text for the consumer: `<think>` sections become thinking under `thinking: "events"`. */
const textEvents = (state: State, text: string, pieces?: ReadonlyArray<{ thinking: boolean; text: string }>): Array<TurnEvent> => {
  state.outputChars += text.length
  const split = pieces ?? (state.splitter === undefined ? [{ thinking: false, text }] : state.splitter.push(text))
  return split.map((p): TurnEvent => (p.thinking ? { _tag: "ThinkingDelta", text: p.text } : { _tag: "TextDelta", text: p.text }))
}

/**
 * The tag parser's events as turn events. A call that was not valid is the host's to judge: with a tool name it
 * is passed on as a call carrying what could be read of its parameters; without one its text goes back into the
 * reply.
 */
const fromTags = (state: State, events: ReadonlyArray<ToolTags.ToolTagEvent>, ids: () => string): Array<TurnEvent> => {
  const out: Array<TurnEvent> = []
  for (const e of events) {
    switch (e._tag) {
      case "TextDelta":
        out.push(...textEvents(state, e.text))
        break
      case "InvalidCall": {
        const name = e.name?.trim() ?? ""
        // No name (or an absurd one): nothing the host could answer; the text goes back into the reply.
        if (name === "" || name.length > MAX_PASSED_NAME) {
          out.push(...textEvents(state, e.raw))
          state.warnings.push({ message: "a malformed tool call block was kept as text", annotations: { reason: e.reason } })
          break
        }
        const id = ids()
        const [json, args] = argumentsText(state, name, e.arguments ?? {})
        state.calls++
        state.warnings.push({
          message: "a tool call that is not valid here was passed on for the host to answer",
          annotations: { tool: name, reason: e.reason }
        })
        out.push(
          { _tag: "ToolCallStart", id, name },
          { _tag: "ToolCallDelta", id, argumentsDelta: json },
          { _tag: "ToolCallEnd", id, name, arguments: args }
        )
        break
      }
      case "ToolCallEnd":
        state.calls++
        out.push(e)
        break
      default:
        out.push(e)
    }
  }
  return out
}

const nativeDelta = (
  state: State,
  chunk: Extract<Backend.Chunk, { _tag: "ToolCallDelta" }>,
  ids: () => string
): ReadonlyArray<TurnEvent> => {
  state.outputChars += chunk.argumentsDelta.length
  const known = state.native.get(chunk.index)
  const delta = (id: string): ReadonlyArray<TurnEvent> =>
    chunk.argumentsDelta === "" ? [] : [{ _tag: "ToolCallDelta", id, argumentsDelta: chunk.argumentsDelta }]
  if (known !== undefined) {
    if (chunk.name !== undefined && known.name === "") known.name = chunk.name
    known.args += chunk.argumentsDelta
    return delta(known.id)
  }
  const given = chunk.id === undefined ? "" : ToolTags.sanitizeId(chunk.id)
  const call: NativeCall = { id: given !== "" ? given : ids(), name: chunk.name ?? "", args: chunk.argumentsDelta }
  state.native.set(chunk.index, call)
  return [{ _tag: "ToolCallStart", id: call.id, name: call.name }, ...delta(call.id)]
}

/**
 * Closes native calls. Every call that was started ends, so the host answers it; arguments that are not a JSON
 * object, or nest deeper than the host could write back (`jsonObject`'s bound), are passed on as `{}` (their text
 * went out in the deltas, and a warning names the call).
 */
const endNative = (state: State): Array<TurnEvent> =>
  [...state.native.values()].map((call): TurnEvent => {
    state.calls++
    const parsed = toolCallArguments(call.args)
    if (Option.isNone(parsed)) {
      state.warnings.push({
        message: "the arguments of a native tool call are not a JSON object (or nest too deeply); passed on as {}",
        annotations: { tool: call.name, argumentChars: call.args.length }
      })
    }
    return { _tag: "ToolCallEnd", id: call.id, name: call.name, arguments: Option.getOrElse(parsed, () => ({})) }
  })

/** `thinking: "text"`: the reasoning is text, inside `<think>…</think>` (as a kernel that inlines it writes it). */
const closeReasoning = (state: State): Array<TurnEvent> => {
  if (!state.reasoningOpen) return []
  state.reasoningOpen = false
  return textEvents(state, "</think>", [{ thinking: false, text: "</think>" }])
}

/**
 * @since 0.1.0
 */
export const make: Effect.Effect<Service, never, Backend.Backend | ModelCatalog | TurnRetry | AiosConfig> = Effect.gen(
  function*() {
    const backend = yield* Backend.Backend
    const catalog = yield* ModelCatalog
    const retry = yield* TurnRetry
    const config = yield* AiosConfig
    let turns = 0
    // One generator for every turn of this service: ids stay unique across a conversation's turns.
    const ids = ToolTags.makeIdGenerator()
    // Set once the endpoint refused native tools: later turns use tags without asking again.
    let nativeRefused = false

    const prepare = (request: TurnRequest, wanted: "tags" | "native"): Prepared => {
      const mode = wanted === "native" && nativeRefused ? "tags" : wanted
      const tools = request.context.tools ?? []
      const messages = ToolTags.renderContext(mode === "tags" ? request.context : { ...request.context, tools: [] })
      return {
        request,
        mode,
        call: {
          model: request.model,
          messages,
          tools: mode === "native" ? tools : [],
          maxTokens: request.maxTokens,
          temperature: request.temperature,
          timeoutMs: request.timeoutMs
        },
        tools,
        inputChars: messages.reduce((n, m) => n + m.content.length, 0)
      }
    }

    /** Parser calls, guarded: a reply the parser cannot take (nested beyond the stack) is a malformed reply. */
    const parse = (prepared: Prepared, run: Effect.Effect<ReadonlyArray<ToolTags.ToolTagEvent>>) =>
      Effect.catchAllDefect(run, (e) =>
        Effect.fail(
          new BackendError.MalformedResponse({
            url: backend.url,
            model: prepared.call.model,
            endpoint: backend.capabilities.callEndpoint,
            issue: `the reply could not be parsed (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)})`
          })
        ))

    /** The events after the last chunk: held-back text, native calls, `Finish`; or the model's empty reply. */
    const finish = (
      prepared: Prepared,
      state: State,
      chunk: Extract<Backend.Chunk, { _tag: "Finish" }>
    ): Effect.Effect<ReadonlyArray<TurnEvent>, BackendError.BackendError> =>
      Effect.flatMap(parse(prepared, Effect.sync(() => state.parser.end())), (held) => {
        const tail = [...fromTags(state, held, ids)]
        const rest = state.splitter?.end() ?? []
        tail.push(...textEvents(state, "", rest), ...endNative(state))
        if (state.outputChars === 0 && state.calls === 0) {
          return Effect.fail(new BackendError.EmptyReply({ url: backend.url, model: prepared.call.model }))
        }
        const reason: Backend.FinishReason = state.calls > 0 ? "toolUse" : chunk.reason === "length" ? "length" : "stop"
        const usage = chunk.usage ?? Backend.estimatedUsage(prepared.inputChars, state.outputChars)
        return Effect.succeed([...tail, { _tag: "Finish", reason, usage }])
      })

    /** One chunk of the reply → the turn events it makes certain (and the warnings it raised, logged). */
    const step = (prepared: Prepared, meta: Meta, state: State) =>
    (chunk: Backend.Chunk): Effect.Effect<ReadonlyArray<TurnEvent>, BackendError.BackendError> => {
      const events: Effect.Effect<ReadonlyArray<TurnEvent>, BackendError.BackendError> = chunk._tag === "ReasoningDelta"
        ? Effect.sync(() => reasoning(state, chunk.text))
        : Effect.flatMap(Effect.sync(() => closeReasoning(state)), (closed) => {
          switch (chunk._tag) {
            case "TextDelta":
              // In bounded pieces, yielding between them: a whole AIOS reply is one chunk.
              return Effect.map(parse(prepared, ToolTags.feed(state.parser, chunk.text)), (e) => [...closed, ...fromTags(state, e, ids)])
            case "ToolCallDelta":
              return Effect.succeed([...closed, ...nativeDelta(state, chunk, ids)])
            case "Finish":
              return Effect.map(finish(prepared, state, chunk), (e) => [...closed, ...e])
          }
        })
      return Effect.flatMap(events, (out) => {
        if (state.warnings.length === 0) return Effect.succeed(out)
        const warnings = state.warnings
        state.warnings = []
        return Effect.as(
          Effect.forEach(warnings, (w) =>
            Effect.logWarning(w.message).pipe(
              Effect.annotateLogs({ turn: meta.turn, model: prepared.call.model, ...w.annotations })
            ), { discard: true }),
          out
        )
      })
    }

    /** A reasoning delta, per `thinking`: an event, dropped, or text inside `<think>…</think>`. */
    const reasoning = (state: State, text: string): Array<TurnEvent> => {
      if (text === "") return []
      switch (config.thinking) {
        case "events":
          return textEvents(state, text, [{ thinking: true, text }])
        case "strip":
          return []
        case "text": {
          const open = state.reasoningOpen ? "" : "<think>"
          state.reasoningOpen = true
          return textEvents(state, open + text, [{ thinking: false, text: open + text }])
        }
      }
    }

    /**
     * The reply's events as chunks arrive. One attempt is the model-list check, then the call; the turn's retry
     * budget and deadline cover them all, and an attempt is retried only until output has started. Called once per
     * run of the turn's stream (inside its `unwrap`), so each run parses with fresh state.
     */
    const eventsOf = (prepared: Prepared, meta: Meta): Stream.Stream<TurnEvent, BackendError.BackendError> => {
      const state: State = {
        parser: ToolTags.makeStreamParser({
          tools: prepared.tools,
          idGenerator: ids,
          think: config.thinking === "strip" ? "strip" : "text"
        }),
        splitter: config.thinking === "events" ? makeThinkSplitter() : undefined,
        native: new Map(),
        reasoningOpen: false,
        outputChars: 0,
        calls: 0,
        warnings: []
      }
      // Validated before the call: a name the kernel does not serve hangs or fails it late. Both end by the turn's
      // deadline: the list wait here, the call by its own limits.
      const call: Backend.Request = { ...prepared.call, deadline: meta.deadline }
      const listed = withinDeadline(catalog.require(call.model), call.model, meta.deadline)
      const attempt = Stream.unwrap(Effect.as(listed, backend.stream(call)))
      return Stream.mapConcatEffect(retry.retryStream(attempt, meta), step(prepared, meta, state))
    }

    const run: Service["run"] = (request) =>
      Stream.unwrap(Effect.map(Clock.currentTimeMillis, (now) => {
        const wanted = request.toolCalls ?? config.toolCalls
        const prepared = prepare(request, wanted)
        const meta: Meta = {
          turn: request.turn ?? `turn${++turns}`,
          model: request.model,
          onRetry: request.onRetry,
          deadline: { atMs: now + config.turnTimeoutMs, timeoutMs: config.turnTimeoutMs },
          // A refusal of native tools is not the end: the turn goes on as tags below.
          onGiveUp: (outcome) => {
            if (!(prepared.mode === "native" && outcome.kind === "tools_unsupported")) request.onGiveUp?.(outcome)
          }
        }
        return eventsOf(prepared, meta).pipe(
          Stream.catchAll((error) =>
            prepared.mode === "native" && error.kind === "tools_unsupported"
              ? Stream.unwrap(Effect.map(asTags(prepared, meta, error), (tags) => eventsOf(tags, { ...meta, onGiveUp: request.onGiveUp })))
              : Stream.fail(error)
          )
        )
      }))

    /** `effect`, failing with the turn's timeout once its deadline passes. */
    const withinDeadline = <A>(
      effect: Effect.Effect<A, BackendError.BackendError>,
      model: string,
      deadline: Backend.Deadline | undefined
    ): Effect.Effect<A, BackendError.BackendError> =>
      deadline === undefined ? effect : Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.timeoutFail(effect, {
          duration: Duration.millis(Math.max(0, deadline.atMs - now)),
          onTimeout: () =>
            new BackendError.BackendTimeout({ url: backend.url, model, timeoutMs: deadline.timeoutMs, setting: "turnTimeoutMs" })
        }))

    /** An endpoint without native tools refuses the request before any output: say so, then redo it as tags. */
    const asTags = (prepared: Prepared, meta: Meta, error: BackendError.BackendError) =>
      Effect.logWarning("the endpoint does not take native tools; using tool tags in the text instead").pipe(
        Effect.annotateLogs({ turn: meta.turn, model: prepared.call.model, error: error.message }),
        Effect.zipRight(Effect.sync(() => {
          nativeRefused = true
          return prepare(prepared.request, "tags")
        }))
      )

    return { run } satisfies Service
  }
)

/**
 * @since 0.1.0
 */
export const layer: Layer.Layer<Turn, never, Backend.Backend | ModelCatalog | TurnRetry | AiosConfig> = Layer.effect(
  Turn,
  make
)

/**
 * `Turn.run` from the context.
 *
 * @since 0.2.0
 */
export const run = (request: TurnRequest): Stream.Stream<TurnEvent, BackendError.BackendError, Turn> =>
  Stream.unwrap(Effect.map(Turn, (turn) => turn.run(request)))
