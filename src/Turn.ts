/**
 * One model call of an agent loop, end to end, as a `Stream` of turn events: the conversation rendered for the
 * backend (tools as a system-prompt section, or natively), the call under the turn's retry budget, and the reply
 * parsed into text deltas and tool calls as it arrives. The same path for every backend: one that answers in one
 * piece is a stream of one burst.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { AiosConfig } from "./AiosConfig.js"
import * as Backend from "./Backend.js"
import * as BackendError from "./BackendError.js"
import { toolCallArguments } from "./internal/jsonObject.js"
import { ModelCatalog } from "./ModelCatalog.js"
import * as ToolTags from "./ToolTags.js"
import { type Meta, TurnRetry } from "./TurnRetry.js"

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
 * What a turn emits: text as it becomes certain, each tool call as start / arguments / end with the same
 * alphanumeric id, calls that were not executed (`InvalidCall`, their text stays in the reply), then `Finish`.
 *
 * @since 0.1.0
 */
export type TurnEvent =
  | ToolTags.TextDelta
  | ToolTags.ToolCallStart
  | ToolTags.ToolCallDelta
  | ToolTags.ToolCallEnd
  | ToolTags.InvalidCall
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
  readonly timeoutMs?: number | undefined
  /** Told of each retry of this turn (see `TurnRetry.Meta.onRetry`). */
  readonly onRetry?: ((retry: { readonly attempt: number; readonly delayMs: number }) => void) | undefined
}

/**
 * @since 0.1.0
 */
export interface Service {
  /** Runs one turn. Fails with the last `BackendError` once the turn's retry budget is spent. */
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

/**
 * One run's parse state: the tag parser, native calls being assembled, and counts for usage. Mutable, and made
 * afresh for each run of the stream, so a re-run turn starts clean.
 */
interface State {
  readonly parser: ToolTags.StreamParser
  readonly native: Map<number, NativeCall>
  outputChars: number
  calls: number
}

/** What a turn needs once its request is checked and rendered. */
interface Prepared {
  readonly request: TurnRequest
  readonly mode: "tags" | "native"
  readonly call: Backend.Request
  readonly meta: Meta
  readonly tools: ReadonlyArray<ToolTags.ToolDefinition>
  readonly inputChars: number
}

/** Counts what the consumer receives, for usage and the stop reason. */
const counted = (state: State, events: ReadonlyArray<ToolTags.ToolTagEvent>): ReadonlyArray<TurnEvent> => {
  for (const e of events) {
    if (e._tag === "TextDelta") state.outputChars += e.text.length
    else if (e._tag === "ToolCallEnd") state.calls++
  }
  return events
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

/** Closes native calls: a call whose arguments are not a JSON object is reported, never executed. */
const endNative = (state: State): ReadonlyArray<TurnEvent> =>
  [...state.native.values()].map((call): TurnEvent => {
    const args = toolCallArguments(call.args)
    if (Option.isSome(args) && call.name !== "") {
      state.calls++
      return { _tag: "ToolCallEnd", id: call.id, name: call.name, arguments: args.value }
    }
    return { _tag: "InvalidCall", name: call.name, reason: "native tool call arguments are not a JSON object", raw: call.args }
  })

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

    const prepare = (request: TurnRequest): Effect.Effect<Prepared, BackendError.BackendError> =>
      // Validated before the call: a name the kernel does not serve hangs or fails it late.
      Effect.map(catalog.require(request.model), () => {
        const wanted = request.toolCalls ?? config.toolCalls
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
          meta: { turn: request.turn ?? `turn${++turns}`, model: request.model, onRetry: request.onRetry },
          tools,
          inputChars: messages.reduce((n, m) => n + m.content.length, 0)
        }
      })

    /** The events after the last chunk: held-back text, native calls, `Finish`; or the model's empty reply. */
    const finish = (
      prepared: Prepared,
      state: State,
      chunk: Extract<Backend.Chunk, { _tag: "Finish" }>
    ): Effect.Effect<ReadonlyArray<TurnEvent>, BackendError.BackendError> => {
      const tail = [...counted(state, state.parser.end()), ...endNative(state)]
      if (state.outputChars === 0 && state.calls === 0 && state.native.size === 0) {
        return Effect.fail(new BackendError.EmptyReply({ url: backend.url, model: prepared.call.model }))
      }
      const reason: Backend.FinishReason = state.calls > 0 ? "toolUse" : chunk.reason === "length" ? "length" : "stop"
      const usage = chunk.usage ?? Backend.estimatedUsage(prepared.inputChars, state.outputChars)
      return Effect.succeed([...tail, { _tag: "Finish", reason, usage }])
    }

    /** One chunk of the reply → the turn events it makes certain. */
    const step = (prepared: Prepared) =>
    (state: State, chunk: Backend.Chunk): Effect.Effect<readonly [State, ReadonlyArray<TurnEvent>], BackendError.BackendError> => {
      switch (chunk._tag) {
        case "TextDelta":
          return Effect.succeed([state, counted(state, state.parser.push(chunk.text))])
        case "ToolCallDelta":
          return Effect.succeed([state, nativeDelta(state, chunk, ids)])
        case "ReasoningDelta":
          return Effect.succeed([state, []])
        case "Finish":
          return Effect.map(finish(prepared, state, chunk), (events) => [state, events] as const)
      }
    }

    const warnInvalid = (prepared: Prepared) => (event: TurnEvent): Effect.Effect<void> =>
      event._tag === "InvalidCall"
        ? Effect.logWarning("a tool call in the reply was not executed").pipe(
          Effect.annotateLogs({ turn: prepared.meta.turn, model: prepared.call.model, tool: event.name ?? "", reason: event.reason })
        )
        : Effect.void

    /** The reply's events as chunks arrive; the call is retried only until output has started. */
    const eventsOf = (prepared: Prepared): Stream.Stream<TurnEvent, BackendError.BackendError> =>
      Stream.suspend(() => {
        const state: State = {
          parser: ToolTags.makeStreamParser({ tools: prepared.tools, idGenerator: ids }),
          native: new Map(),
          outputChars: 0,
          calls: 0
        }
        return retry.retryStream(backend.stream(prepared.call), prepared.meta).pipe(
          Stream.mapAccumEffect(state, step(prepared)),
          Stream.mapConcat((events) => events),
          Stream.tap(warnInvalid(prepared))
        )
      })

    /** An endpoint without native tools refuses the request before any output: say so, then redo it as tags. */
    const asTags = (prepared: Prepared, error: BackendError.BackendError) =>
      Effect.logWarning("the endpoint does not take native tools; using tool tags in the text instead").pipe(
        Effect.annotateLogs({ turn: prepared.meta.turn, model: prepared.call.model, error: error.message }),
        Effect.zipRight(Effect.sync(() => {
          nativeRefused = true
        })),
        Effect.zipRight(prepare({ ...prepared.request, toolCalls: "tags" }))
      )

    const run: Service["run"] = (request) =>
      Stream.unwrap(Effect.map(prepare(request), (prepared) =>
        eventsOf(prepared).pipe(
          Stream.catchAll((error) =>
            prepared.mode === "native" && error.kind === "tools_unsupported"
              ? Stream.unwrap(Effect.map(asTags(prepared, error), eventsOf))
              : Stream.fail(error)
          )
        )))

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
