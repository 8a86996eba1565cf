import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as AiosConfig from "../src/AiosConfig.js"
import * as KernelClient from "../src/KernelClient.js"
import * as ModelCatalog from "../src/ModelCatalog.js"
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

/** Reference kernel + config + KernelClient (fetch) + ModelCatalog. */
export const clientStack = (options: ReferenceKernel.Options = {}, config: AiosConfig.AiosConfigInput = {}) =>
  ModelCatalog.layer.pipe(
    Layer.provideMerge(KernelClient.layer),
    Layer.provideMerge(kernelWithConfig(options, config)),
    Layer.provideMerge(NodeHttpClient.layerUndici)
  )

/** A loopback URL where nothing listens (a port that was just freed). */
export const deadUrl = (): Promise<string> =>
  import("node:net").then(({ createServer }) =>
    new Promise((resolve, reject) => {
      const s = createServer()
      s.once("error", reject)
      s.listen(0, "127.0.0.1", () => {
        const address = s.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        s.close(() => resolve(`http://127.0.0.1:${port}`))
      })
    })
  )

/** An OpenAI-format `read` tool, as native tool tests send it. */
export const nativeReadTool = {
  type: "function" as const,
  function: { name: "read", parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } }
}
