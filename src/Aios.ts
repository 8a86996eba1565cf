/**
 * The whole stack as one layer: configuration, the backend the configuration names, the model catalog, the
 * per-turn retry schedule and `Turn`. `layer` takes its `HttpClient` from the caller's context (traced, proxied
 * or mocked as the caller likes); `layerNode` supplies Node's (undici).
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as AiosBackend from "./AiosBackend.js"
import * as AiosConfig from "./AiosConfig.js"
import type * as Backend from "./Backend.js"
import * as ModelCatalog from "./ModelCatalog.js"
import * as OpenAiBackend from "./OpenAiBackend.js"
import * as Turn from "./Turn.js"
import * as TurnRetry from "./TurnRetry.js"

/** Every service the stack provides. @since 0.1.0 */
export type Services =
  | Turn.Turn
  | ModelCatalog.ModelCatalog
  | Backend.Backend
  | TurnRetry.TurnRetry
  | AiosConfig.AiosConfig

/**
 * The backend `AiosConfig.backend` names.
 *
 * @since 0.2.0
 */
export const backendLayer: Layer.Layer<Backend.Backend, never, HttpClient.HttpClient | AiosConfig.AiosConfig> = Layer
  .unwrapEffect(
    Effect.map(AiosConfig.AiosConfig, (config) =>
      config.backend === "openai-compatible" ? OpenAiBackend.layer : AiosBackend.layer)
  )

/**
 * The stack over a given `AiosConfig` layer.
 *
 * @since 0.1.0
 */
export const layerWith = <E, R>(
  config: Layer.Layer<AiosConfig.AiosConfig, E, R>
): Layer.Layer<Services, E, R | HttpClient.HttpClient> =>
  Turn.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(ModelCatalog.layer, TurnRetry.layer)),
    Layer.provideMerge(backendLayer),
    Layer.provideMerge(config)
  )

/**
 * The stack from plain options (e.g. the OpenClaw plugin config), over the caller's `HttpClient`.
 *
 * @since 0.1.0
 */
export const layer = (
  options: AiosConfig.AiosConfigInput = {}
): Layer.Layer<Services, AiosConfig.AiosConfigError, HttpClient.HttpClient> => layerWith(AiosConfig.layer(options))

/**
 * The stack from the environment (`AIOS_URL`, …) over `options`, over the caller's `HttpClient`.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  options: AiosConfig.AiosConfigInput = {}
): Layer.Layer<Services, ConfigError.ConfigError, HttpClient.HttpClient> => layerWith(AiosConfig.layerConfig(options))

/**
 * `layer` on Node's HTTP client (undici).
 *
 * @since 0.2.0
 */
export const layerNode = (options: AiosConfig.AiosConfigInput = {}): Layer.Layer<Services, AiosConfig.AiosConfigError> =>
  Layer.provide(layer(options), NodeHttpClient.layerUndici)

/**
 * `layerConfig` on Node's HTTP client (undici).
 *
 * @since 0.2.0
 */
export const layerNodeConfig = (
  options: AiosConfig.AiosConfigInput = {}
): Layer.Layer<Services, ConfigError.ConfigError> => Layer.provide(layerConfig(options), NodeHttpClient.layerUndici)
