/**
 * The OpenClaw plugin entry (`effect-aios/openclaw`): registers the `aios` provider and nothing else. Cheap and
 * free of I/O, since OpenClaw calls `register` several times per command.
 *
 * @since 0.2.0
 */
import type { AiosConfigInput } from "../AiosConfig.js"
import { PROVIDER_ID } from "./models.js"
import { type AiosProviderPlugin, type HostLogger, makeAiosProvider } from "./provider.js"

export * as Failover from "./failover.js"
export { AUTH_ENV_VAR, type ModelRow, PROVIDER_ID, type ProviderEntry, type RuntimeModel } from "./models.js"
export { type AiosProviderPlugin, type HostLogger, makeAiosProvider, stderrLogger } from "./provider.js"
export { makeStreamFn, type TurnRuntime } from "./stream.js"

/**
 * The parts of OpenClaw's plugin API the entry uses.
 *
 * @since 0.2.0
 */
export interface PluginApi {
  readonly pluginConfig?: Record<string, unknown> | undefined
  readonly logger?: HostLogger | undefined
  readonly registerProvider: (provider: AiosProviderPlugin) => void
  readonly lifecycle?: { readonly onDispose?: ((dispose: () => void | Promise<void>) => unknown) | undefined } | undefined
}

/**
 * @since 0.2.0
 */
export default {
  id: PROVIDER_ID,
  name: "AIOS kernel",
  description: "Routes OpenClaw model calls through the AIOS kernel (or any OpenAI-compatible endpoint) with effect-aios.",
  register(api: PluginApi): void {
    const provider = makeAiosProvider((api.pluginConfig ?? {}) as AiosConfigInput, { logger: api.logger })
    api.lifecycle?.onDispose?.(provider.dispose)
    api.registerProvider(provider)
  }
}
