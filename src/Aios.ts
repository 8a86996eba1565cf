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
import * as Option from "effect/Option"
import * as AiosBackend from "./AiosBackend.js"
import * as AiosConfig from "./AiosConfig.js"
import type * as Backend from "./Backend.js"
import * as KernelPool from "./KernelPool.js"
import * as ModelCatalog from "./ModelCatalog.js"
import * as OpenAiBackend from "./OpenAiBackend.js"
import * as SharedState from "./SharedState.js"
import * as Turn from "./Turn.js"
import * as TurnRetry from "./TurnRetry.js"

/** Every service the stack provides. @since 0.1.0 */
export type Services =
  | Turn.Turn
  | ModelCatalog.ModelCatalog
  | Backend.Backend
  | TurnRetry.TurnRetry
  | AiosConfig.AiosConfig
  | SharedState.SharedState

/**
 * The backend the configuration names: a `KernelPool` over `AiosConfig.kernels` when that is set, else the one
 * backend at `baseUrl` (`AiosConfig.backend` names the wire either way). The pool keeps its ejections in the
 * `SharedState` in context (shared through Redis when that is configured), or in this process when there is none.
 *
 * @since 0.2.0
 */
export const backendLayer: Layer.Layer<Backend.Backend, never, HttpClient.HttpClient | AiosConfig.AiosConfig> = Layer
  .unwrapEffect(
    Effect.map(Effect.zip(AiosConfig.AiosConfig, Effect.serviceOption(SharedState.SharedState)), ([config, shared]) =>
      config.kernels !== undefined && config.kernels.length > 0
        ? KernelPool.layer.pipe(
          Layer.provide(Option.match(shared, {
            onNone: () => SharedState.layerMemory,
            onSome: (service) => Layer.succeed(SharedState.SharedState, service)
          }))
        )
        : config.backend === "openai-compatible"
        ? OpenAiBackend.layer
        : AiosBackend.layer)
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
    // Limits, key cooldowns and kernel ejections: in memory, or in Redis when `redis` is configured.
    Layer.provideMerge(SharedState.layerConfig),
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
