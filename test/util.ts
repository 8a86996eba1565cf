import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as AiosBackend from "../src/AiosBackend.js"
import * as Aios from "../src/Aios.js"
import * as AiosConfig from "../src/AiosConfig.js"
import type * as Backend from "../src/Backend.js"
import * as ModelCatalog from "../src/ModelCatalog.js"
import * as OpenAiBackend from "../src/OpenAiBackend.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"

/** A reference kernel on an ephemeral loopback port, with an `AiosConfig` pointing at it. */
export const kernelWithConfig = (
  options: ReferenceKernel.Options = {},
  config: AiosConfig.AiosConfigInput = {}
): Layer.Layer<ReferenceKernel.ReferenceKernel | AiosConfig.AiosConfig> =>
  configFor(config).pipe(Layer.provideMerge(ReferenceKernel.layer(options)), Layer.orDie)

/** An `AiosConfig` pointing at the reference kernel in context (its `/v1` for the OpenAI-compatible backend). */
export const configFor = (config: AiosConfig.AiosConfigInput = {}) =>
  Layer.effect(
    AiosConfig.AiosConfig,
    Effect.flatMap(ReferenceKernel.ReferenceKernel, (k) =>
      AiosConfig.make({ ...config, baseUrl: config.backend === "openai-compatible" ? `${k.url}/v1` : k.url }))
  ).pipe(Layer.orDie)

/**
 * Reference kernel + config + the backend `config.backend` names (AIOS, or OpenAI-compatible at its `/v1`) over
 * an HttpClient (undici unless given) + ModelCatalog.
 */
export const backendStack = (
  options: ReferenceKernel.Options = {},
  config: AiosConfig.AiosConfigInput = {},
  httpClient: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndici
) =>
  ModelCatalog.layer.pipe(
    Layer.provideMerge(config.backend === "openai-compatible" ? OpenAiBackend.layer : AiosBackend.layer),
    Layer.provideMerge(kernelWithConfig(options, config)),
    Layer.provideMerge(httpClient)
  )

/** The whole `Aios` stack (on undici) over a reference kernel it starts, with an `AiosConfig` pointing at it. */
export const aiosStack = (options: ReferenceKernel.Options = {}, config: AiosConfig.AiosConfigInput = {}) =>
  Aios.layerWith(configFor(config)).pipe(
    Layer.provideMerge(ReferenceKernel.layer(options)),
    Layer.provide(NodeHttpClient.layerUndici)
  )

/** Runs an effect on `aiosStack`. */
export const withAiosStack = (options: ReferenceKernel.Options = {}, config: AiosConfig.AiosConfigInput = {}) =>
<A, E>(effect: Effect.Effect<A, E, Aios.Services | ReferenceKernel.ReferenceKernel>) =>
  Effect.provide(effect, aiosStack(options, config))

/** A loopback port that was just free. */
export const freePort = (): Promise<number> =>
  import("node:net").then(({ createServer }) =>
    new Promise((resolve, reject) => {
      const s = createServer()
      s.once("error", reject)
      s.listen(0, "127.0.0.1", () => {
        const address = s.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        s.close(() => resolve(port))
      })
    })
  )

/** A loopback URL where nothing listens (a port that was just freed). */
export const deadUrl = (): Promise<string> => freePort().then((port) => `http://127.0.0.1:${port}`)

/** A native `read` tool, as native tool tests send it (each backend renders it in its wire format). */
export const nativeReadTool: Backend.Tool = {
  name: "read",
  parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] }
}

/** Runs `effect` with every log line captured (level, message and annotations, as the default logger would print). */
export const capturingLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make((options) => {
      lines.push(`${options.logLevel.label} ${JSON.stringify(options.message)} ${JSON.stringify([...options.annotations])}`)
    })
    const result = yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return { result, lines }
  })
