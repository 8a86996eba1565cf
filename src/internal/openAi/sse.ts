/**
 * A streamed `/v1` completion, from server-sent events to `Backend.Chunk`s: a state machine over the events
 * (`Stream.mapAccumEffect`). A reply ends at `[DONE]`, or at the end of the body once its final `finish_reason`
 * came. A server that sends the final chunk but never `[DONE]` nor the end: the decoder notes when the final
 * chunk came (`finishedAt`), and the body's reader (`Http.bodyWithin`) ends the body `finishGraceMs` later, so
 * the complete reply ends as a success.
 */
import * as Sse from "@effect/experimental/Sse"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Backend from "../../Backend.js"
import * as BackendError from "../../BackendError.js"
import * as Http from "../http.js"
import * as Wire from "./wire.js"

/** A pending SSE event may hold at most this many UTF-16 code units (a whole reply fits many times over). */
export const maxEventSize = 4 * 1024 * 1024

/** How long a reply whose final `finish_reason` came waits for `[DONE]` or the end of the body. */
export const finishGraceMs = 1_000

/**
 * Server-sent events from text, with Effect's SSE parser. `Sse.makeParser` rather than `Sse.makeChannel`: the
 * channel turns an oversized event into a defect and obeys `retry:` by sleeping and reading on, while a chat
 * stream is never reconnected and an oversized event must be a typed error.
 */
const sseEvents = <E>(
  text: Stream.Stream<string, E>,
  tooLarge: () => BackendError.BackendError
): Stream.Stream<Sse.Event, E | BackendError.BackendError> =>
  Stream.suspend(() => {
    let pending: Array<Sse.Event> = []
    const parser = Sse.makeParser((event) => {
      if (event._tag === "Event") pending.push(event)
    }, { maxEventSize })
    return Stream.mapChunksEffect(text, (chunk) => {
      // Line by line: the parser rescans a fed piece once per line in it, so a piece of many lines is quadratic.
      for (const piece of chunk) {
        for (const line of piece.split(/(?<=\n)/)) {
          if (parser.feed(line) !== undefined) return Effect.fail(tooLarge())
        }
      }
      const out = Chunk.unsafeFromArray(pending)
      pending = []
      return Effect.succeed(out)
    })
  })

/** What the decoder knows between events. */
export interface Decoding {
  readonly finished: boolean
  readonly reason: Backend.FinishReason | undefined
  readonly usage: Backend.Usage | undefined
  /** For servers that omit `index` on tool-call deltas: a new id starts a new call, anything else continues. */
  readonly ids: ReadonlyMap<string, number>
  readonly lastIndex: number
}

export const start: Decoding = { finished: false, reason: undefined, usage: undefined, ids: new Map(), lastIndex: -1 }

export const finish = (s: Decoding): Backend.Chunk => ({ _tag: "Finish", reason: s.reason, usage: s.usage })

/** Marks the end of the body, so the decoder can tell a finished reply from a cut one. */
const End = { _tag: "End" } as const

/** Where the decoder reports to, beside its chunks. */
export interface Context {
  readonly target: Http.Target & { readonly model: string; readonly endpoint: string }
  /** An error sent in the stream (an error event, or `{"error": …}` data) as the failure it stands for. */
  readonly inBodyError: (data: string) => Effect.Effect<never, BackendError.BackendError>
  /** Set to the `Clock`'s time when the final `finish_reason` arrives: the body's reader then allows the grace. */
  readonly finishedAt: Ref.Ref<number | undefined>
}

/** The chunks of one streamed reply from the text of its body; `Finish` comes at `[DONE]` or the end. */
export const decode = <E>(text: Stream.Stream<string, E>, context: Context): Stream.Stream<Backend.Chunk, E | BackendError.BackendError> => {
  const { target } = context
  const malformed = (issue: string) => new BackendError.MalformedResponse({ ...target, issue })
  const tooLarge = () => malformed(`a stream event is larger than ${maxEventSize} characters`)
  const decodeChunk = Schema.decodeUnknownEither(Wire.ChatCompletionChunk)

  const step = (
    s: Decoding,
    input: Sse.Event | typeof End
  ): Effect.Effect<readonly [Decoding, ReadonlyArray<Backend.Chunk>], BackendError.BackendError> => {
    if (input._tag === "End") {
      return s.finished
        ? Effect.succeed([s, [finish(s)]])
        : Effect.fail(new BackendError.BackendUnreachable({ ...target, detail: "the stream ended before the reply finished" }))
    }
    const data = input.data.trim()
    if (input.event === "error") return context.inBodyError(data)
    if (data === "") return Effect.succeed([s, []])
    if (data === "[DONE]") return Effect.succeed([s, [finish(s)]])
    const json = Wire.parseJson(data)
    if (Option.isNone(json)) return Effect.fail(malformed("a stream event is not JSON"))
    if (Wire.hasError(json.value)) return context.inBodyError(data)
    const decoded = decodeChunk(json.value)
    if (Either.isLeft(decoded)) return Effect.fail(malformed(`a stream event: ${Http.describeIssue(decoded.left)}`))
    const usage = decoded.right.usage ? Wire.toUsage(decoded.right.usage) : s.usage
    const choice = (decoded.right.choices ?? []).find((c) => (c.index ?? 0) === 0)
    const out: Array<Backend.Chunk> = []
    let next: Decoding = { ...s, usage }
    if (choice !== undefined) {
      const reasoning = choice.delta ? Wire.reasoningOf(choice.delta) : ""
      if (reasoning) out.push({ _tag: "ReasoningDelta", text: reasoning })
      const content = choice.delta?.content
      if (content) out.push({ _tag: "TextDelta", text: content })
      let ids = s.ids
      let lastIndex = s.lastIndex
      for (const call of choice.delta?.tool_calls ?? []) {
        const id = call.id ?? undefined
        const index = call.index ??
          (id === undefined ? undefined : ids.get(id)) ??
          (id !== undefined || lastIndex < 0 ? lastIndex + 1 : lastIndex)
        if (id !== undefined) ids = new Map(ids).set(id, index)
        lastIndex = Math.max(lastIndex, index)
        out.push({
          _tag: "ToolCallDelta",
          index,
          id,
          name: call.function?.name ?? undefined,
          argumentsDelta: call.function?.arguments ?? ""
        })
      }
      next = {
        finished: s.finished || Boolean(choice.finish_reason),
        reason: choice.finish_reason ? Wire.finishReason(choice.finish_reason) : s.reason,
        usage,
        ids,
        lastIndex
      }
    }
    if (!next.finished || s.finished) return Effect.succeed([next, out])
    return Effect.as(Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.set(context.finishedAt, now)), [next, out] as const)
  }

  return Stream.concat(sseEvents(text, tooLarge), Stream.succeed(End)).pipe(
    Stream.mapAccumEffect(start, step),
    Stream.flattenIterables,
    // `[DONE]` ends the reply: what follows (if anything) is not read.
    Stream.takeUntil((chunk) => chunk._tag === "Finish")
  )
}
