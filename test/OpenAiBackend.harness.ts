/** What the OpenAiBackend tests share: the reference server's `/v1` over real HTTP on 127.0.0.1, and readers. */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as AiosConfig from "../src/AiosConfig.js"
import * as Backend from "../src/Backend.js"
import type * as BackendError from "../src/BackendError.js"
import type * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { backendStack } from "./util.js"

/** Reference kernel + `OpenAiBackend` at its `/v1` (5 s timeout unless `config` says otherwise) + ModelCatalog. */
export const v1 = (
  options: ReferenceKernel.Options = {},
  config: AiosConfig.AiosConfigInput = {},
  httpClient?: Layer.Layer<HttpClient.HttpClient>
) => backendStack(options, { requestTimeoutMs: 5_000, ...config, backend: "openai-compatible" }, httpClient)

export const user = (content: string): Array<Backend.Message> => [{ role: "user", content }]

/** Every chunk of one call. */
export const streamOf = (request: Backend.Request) =>
  Effect.flatMap(Backend.Backend, (b) => Effect.map(Stream.runCollect(b.stream(request)), Chunk.toReadonlyArray))

export const fails = <A, R>(effect: Effect.Effect<A, BackendError.BackendError, R>) =>
  Effect.flatMap(Effect.either(effect), (e) =>
    Either.isLeft(e) ? Effect.succeed(e.left) : Effect.dieMessage(`expected a failure, got ${JSON.stringify(e.right)}`))

/** Everything a stream emitted before it ended, and how it ended. */
export const partial = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(Stream.either(stream)), (all) => {
    const items = Chunk.toReadonlyArray(all)
    const lefts = items.filter(Either.isLeft).map((e) => e.left)
    return { emitted: items.filter(Either.isRight).map((e) => e.right), error: lefts[0] }
  })

export const texts = <E, R>(stream: Stream.Stream<Backend.Chunk, E, R>) =>
  Stream.filterMap(stream, (c) => (c._tag === "TextDelta" ? Option.some(c.text) : Option.none()))

export const textOf = (chunks: ReadonlyArray<Backend.Chunk>) => chunks.map((c) => (c._tag === "TextDelta" ? c.text : "")).join("")
