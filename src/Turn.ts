/**
 * One model call of an agent loop, end to end, as a `Stream` of turn events: the conversation rendered for the
 * kernel (tools as a system-prompt section, or natively), the call under the turn's retry budget, and the reply
 * parsed into text deltas and tool calls as it arrives.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { AiosConfig } from "./AiosConfig.js"
import {
  KernelClient,
  type NativeTool,
  nativeToolsUnsupported,
  type QueryChunk,
  type QueryRequest,
  resultToChunks,
  type Usage
} from "./KernelClient.js"
import * as KernelError from "./KernelError.js"
import { ModelCatalog } from "./ModelCatalog.js"
import { toolCallArguments } from "./internal/jsonObject.js"
import * as ToolTags from "./ToolTags.js"
import { type Meta, TurnRetry } from "./TurnRetry.js"

/** Token counts of a turn; `estimated` when the backend reported none (AIOS never does). */
export interface TurnUsage {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly totalTokens: number
  readonly estimated: boolean
}

/** The end of a turn. `toolUse` when the reply holds calls to run. */
export interface Finish {
  readonly _tag: "Finish"
  readonly reason: "stop" | "length" | "toolUse"
  readonly usage: TurnUsage
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
  /** The kernel's model name. */
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
  /** Runs one turn. Fails with the last `KernelError` once the turn's retry budget is spent. */
  readonly run: (request: TurnRequest) => Stream.Stream<TurnEvent, KernelError.KernelError>
  /**
   * Runs one turn, handing each event to `onEvent` as it happens: the same events as `run`. For a backend that
   * answers in one piece (AIOS) this is a plain Effect, without a `Stream`'s fixed cost (measured in
   * `bench/adapter.ts`); the OpenClaw adapter uses it.
   */
  readonly runWith: (request: TurnRequest, onEvent: (event: TurnEvent) => void) => Effect.Effect<void, KernelError.KernelError>
}

/**
 * @since 0.1.0
 */
export class Turn extends Context.Tag("effect-aios/Turn")<Turn, Service>() {}

/** Rough token count for backends that report none: ~4 characters a token. */
export const estimateTokens = (chars: number): number => Math.ceil(chars / 4)

interface NativeCall {
  readonly id: string
  name: string
  args: string
}

/**
 * Per-turn parse state: the tag parser, native calls being assembled, and counts for usage. Mutable, but
 * created afresh for each run of the stream (`Stream.suspend`), so a retried or re-run turn starts clean.
 */
interface State {
  readonly parser: ToolTags.StreamParser
  readonly native: Map<number, NativeCall>
  readonly ids: () => string
  outputChars: number
  calls: number
}

const nativeTools = (tools: ReadonlyArray<ToolTags.ToolDefinition>): ReadonlyArray<NativeTool> =>
  tools.map((t) => ({
    type: "function" as const,
    function: {
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      ...(t.parameters !== undefined ? { parameters: t.parameters } : {})
    }
  }))

/** Counts what the consumer receives, for usage and the stop reason. */
const observe = (state: State, events: ReadonlyArray<ToolTags.ToolTagEvent>): ReadonlyArray<TurnEvent> => {
  for (const e of events) {
    if (e._tag === "TextDelta") state.outputChars += e.text.length
    else if (e._tag === "ToolCallEnd") state.calls++
  }
  return events
}

const step = (state: State, chunk: QueryChunk): ReadonlyArray<TurnEvent> => {
  switch (chunk._tag) {
    case "TextDelta":
      return observe(state, state.parser.push(chunk.text))
    case "ToolCallDelta": {
      const known = state.native.get(chunk.index)
      state.outputChars += chunk.argumentsDelta.length
      if (known === undefined) {
        const given = chunk.id === undefined ? "" : ToolTags.sanitizeId(chunk.id)
        const id = given !== "" ? given : state.ids()
        const call: NativeCall = { id, name: chunk.name ?? "", args: chunk.argumentsDelta }
        state.native.set(chunk.index, call)
        return [
          { _tag: "ToolCallStart", id, name: call.name },
          ...(chunk.argumentsDelta !== "" ? [{ _tag: "ToolCallDelta" as const, id, argumentsDelta: chunk.argumentsDelta }] : [])
        ]
      }
      if (chunk.name !== undefined && known.name === "") known.name = chunk.name
      known.args += chunk.argumentsDelta
      return chunk.argumentsDelta !== "" ? [{ _tag: "ToolCallDelta", id: known.id, argumentsDelta: chunk.argumentsDelta }] : []
    }
    case "Finish":
      return []
  }
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

/** What a turn needs once its request is checked and rendered. */
interface Prepared {
  readonly request: TurnRequest
  readonly mode: "tags" | "native"
  readonly query: QueryRequest
  readonly meta: Meta
  readonly tools: ReadonlyArray<ToolTags.ToolDefinition>
  readonly inputChars: number
}

const freshState = (prepared: Prepared, ids: () => string): State => ({
  parser: ToolTags.makeStreamParser({ tools: prepared.tools, idGenerator: ids }),
  native: new Map(),
  ids,
  outputChars: 0,
  calls: 0
})

/**
 * @since 0.1.0
 */
export const make: Effect.Effect<Service, never, KernelClient | ModelCatalog | TurnRetry | AiosConfig> = Effect.gen(
  function*() {
    const kernel = yield* KernelClient
    const catalog = yield* ModelCatalog
    const retry = yield* TurnRetry
    const config = yield* AiosConfig
    let turns = 0
    // One generator for every turn of this service: ids stay unique across a conversation's turns.
    const ids = ToolTags.makeIdGenerator()
    // Set once the endpoint refused native tools: later turns use tags without asking again.
    let nativeRefused = false

    const prepare = (request: TurnRequest): Effect.Effect<Prepared, KernelError.KernelError> =>
      // Validated before /query: a name the kernel does not serve hangs or fails it late.
      Effect.map(catalog.require(request.model), () => {
        const wanted = request.toolCalls ?? config.toolCalls
        const mode = wanted === "native" && nativeRefused ? "tags" : wanted
        const tools = request.context.tools ?? []
        const messages = ToolTags.renderContext(mode === "tags" ? request.context : { ...request.context, tools: [] })
        return {
          request,
          mode,
          query: {
            model: request.model,
            messages,
            tools: mode === "native" ? nativeTools(tools) : [],
            maxTokens: request.maxTokens,
            temperature: request.temperature,
            timeoutMs: request.timeoutMs
          },
          meta: { turn: request.turn ?? `turn${++turns}`, model: request.model, onRetry: request.onRetry },
          tools,
          inputChars: messages.reduce((n, m) => n + m.content.length, 0)
        }
      })

    /** The events after the last chunk: held-back text, native calls, `Finish`; or the empty-response error. */
    const ending = (
      prepared: Prepared,
      state: State,
      finish: Extract<QueryChunk, { _tag: "Finish" }> | undefined
    ): Effect.Effect<ReadonlyArray<TurnEvent>, KernelError.KernelError> => {
      const tail = [...observe(state, state.parser.end()), ...endNative(state)]
      if (state.outputChars === 0 && state.calls === 0 && state.native.size === 0) {
        return Effect.fail(
          new KernelError.KernelMalformedResponse({
            url: kernel.url,
            model: prepared.query.model,
            endpoint: kernel.backend === "aios" ? "/query" : "/chat/completions",
            issue: "empty response: the model returned no text and no tool calls"
          })
        )
      }
      return Effect.succeed([...tail, {
        _tag: "Finish",
        reason: state.calls > 0 ? "toolUse" : finish?.reason === "length" ? "length" : "stop",
        usage: usageOf(finish?.usage, prepared.inputChars, state.outputChars)
      }])
    }

    const warnInvalid = (prepared: Prepared, event: TurnEvent): Effect.Effect<void> =>
      event._tag === "InvalidCall"
        ? Effect.logWarning("a tool call in the reply was not executed").pipe(
          Effect.annotateLogs({ turn: prepared.meta.turn, model: prepared.query.model, tool: event.name ?? "", reason: event.reason })
        )
        : Effect.void

    /** A backend that answers in one piece: the whole turn as one Effect, retried as a whole. */
    const oneShot = (prepared: Prepared): Effect.Effect<ReadonlyArray<TurnEvent>, KernelError.KernelError> =>
      Effect.gen(function*() {
        const result = yield* retry.retry(kernel.query(prepared.query), prepared.meta)
        const state = freshState(prepared, ids)
        const chunks = resultToChunks(result)
        const events = chunks.flatMap((chunk) => step(state, chunk))
        const finish = chunks.find((c): c is Extract<QueryChunk, { _tag: "Finish" }> => c._tag === "Finish")
        const all = [...events, ...yield* ending(prepared, state, finish)]
        for (const event of all) if (event._tag === "InvalidCall") yield* warnInvalid(prepared, event)
        return all
      })

    /** A streaming backend: events as chunks arrive; retried only until output has started. */
    const streamed = (prepared: Prepared): Stream.Stream<TurnEvent, KernelError.KernelError> =>
      Stream.suspend(() => {
        const state = freshState(prepared, ids)
        let finish: Extract<QueryChunk, { _tag: "Finish" }> | undefined
        const body = retry.retryStream(kernel.queryStream(prepared.query), prepared.meta).pipe(
          Stream.mapConcat((chunk) => {
            if (chunk._tag === "Finish") finish = chunk
            return step(state, chunk)
          }),
          Stream.tap((event) => warnInvalid(prepared, event))
        )
        return Stream.concat(body, Stream.fromIterableEffect(Effect.suspend(() => ending(prepared, state, finish))))
      })

    /** An endpoint without native tools refuses the request before any output: tell, then redo the turn as tags. */
    const refusedNative = (prepared: Prepared, error: KernelError.KernelError): boolean =>
      prepared.mode === "native" && nativeToolsUnsupported(error)
    const asTags = (prepared: Prepared, error: KernelError.KernelError) =>
      Effect.logWarning("the endpoint does not take native tools; using tool tags in the text instead").pipe(
        Effect.annotateLogs({ turn: prepared.meta.turn, model: prepared.query.model, error: error.message }),
        Effect.zipRight(Effect.sync(() => {
          nativeRefused = true
        })),
        Effect.zipRight(prepare({ ...prepared.request, toolCalls: "tags" }))
      )

    const eventsOf = (prepared: Prepared): Stream.Stream<TurnEvent, KernelError.KernelError> =>
      kernel.streaming ? streamed(prepared) : Stream.fromIterableEffect(oneShot(prepared))

    const run: Service["run"] = (request) =>
      Stream.unwrap(Effect.map(prepare(request), (prepared) =>
        eventsOf(prepared).pipe(
          Stream.catchAll((error) =>
            refusedNative(prepared, error) ? Stream.unwrap(Effect.map(asTags(prepared, error), eventsOf)) : Stream.fail(error)
          )
        )))

    const handOver = (prepared: Prepared, onEvent: (event: TurnEvent) => void) =>
      kernel.streaming
        ? Stream.runForEach(streamed(prepared), (event) => Effect.sync(() => onEvent(event)))
        : Effect.map(oneShot(prepared), (events) => events.forEach(onEvent))

    const runWith: Service["runWith"] = (request, onEvent) =>
      Effect.flatMap(prepare(request), (prepared) =>
        handOver(prepared, onEvent).pipe(
          Effect.catchIf(
            (error) => refusedNative(prepared, error),
            (error) => Effect.flatMap(asTags(prepared, error), (tags) => handOver(tags, onEvent))
          )
        ))

    return { run, runWith } satisfies Service
  }
)

const usageOf = (reported: Usage | undefined, inputChars: number, outputChars: number): TurnUsage =>
  Option.match(Option.fromNullable(reported), {
    onNone: () => {
      const inputTokens = estimateTokens(inputChars)
      const outputTokens = estimateTokens(outputChars)
      return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true }
    },
    onSome: (u) => ({
      inputTokens: u.inputTokens,
      outputTokens: u.outputTokens,
      totalTokens: u.inputTokens + u.outputTokens,
      estimated: false
    })
  })

/**
 * @since 0.1.0
 */
export const layer: Layer.Layer<Turn, never, KernelClient | ModelCatalog | TurnRetry | AiosConfig> = Layer.effect(
  Turn,
  make
)
