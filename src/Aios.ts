/**
 * The whole stack as one layer: configuration, the kernel client for the configured backend (on undici), the
 * model catalog, the per-turn retry schedule and `Turn`.
 *
 * @since 0.1.0
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import * as AiosConfig from "./AiosConfig.js"
import * as KernelClient from "./KernelClient.js"
import * as ModelCatalog from "./ModelCatalog.js"
import * as Turn from "./Turn.js"
import * as TurnRetry from "./TurnRetry.js"

/** Every service the stack provides. */
export type Services =
  | Turn.Turn
  | ModelCatalog.ModelCatalog
  | KernelClient.KernelClient
  | TurnRetry.TurnRetry
  | AiosConfig.AiosConfig

/**
 * The stack over a given `AiosConfig` layer.
 *
 * @since 0.1.0
 */
export const layerWith = <E, R>(config: Layer.Layer<AiosConfig.AiosConfig, E, R>): Layer.Layer<Services, E, R> =>
  Turn.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(ModelCatalog.layer, TurnRetry.layer)),
    Layer.provideMerge(KernelClient.layerFromConfig),
    Layer.provideMerge(config),
    Layer.provide(NodeHttpClient.layerUndici)
  )

/**
 * The stack from plain options (e.g. the OpenClaw plugin config).
 *
 * @since 0.1.0
 */
export const layer = (options: AiosConfig.AiosConfigInput = {}): Layer.Layer<Services, AiosConfig.AiosConfigError> =>
  layerWith(AiosConfig.layer(options))

/**
 * The stack from the environment (`AIOS_URL`, …) over `options`.
 *
 * @since 0.1.0
 */
export const layerConfig = (options: AiosConfig.AiosConfigInput = {}): Layer.Layer<Services, ConfigError.ConfigError> =>
  layerWith(AiosConfig.layerConfig(options))
