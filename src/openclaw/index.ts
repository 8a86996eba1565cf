/**
 * The OpenClaw plugin entry (`effect-aios/openclaw`): registers the `aios` provider and nothing else. Cheap and
 * free of I/O, since OpenClaw calls `register` several times per command.
 *
 * @since 0.1.0
 */
import type { AiosConfigInput } from "../AiosConfig.js"
import { type HostLogger, makeAiosProvider } from "./provider.js"

export { type AiosProviderPlugin, makeAiosProvider, PROVIDER_ID, AUTH_ENV_VAR } from "./provider.js"
export { makeStreamFn } from "./stream.js"

/** The parts of OpenClaw's plugin API the entry uses. */
export interface PluginApi {
  readonly pluginConfig?: Record<string, unknown> | undefined
  readonly logger?: HostLogger | undefined
  readonly registerProvider: (provider: ReturnType<typeof makeAiosProvider>) => void
  readonly lifecycle?: { readonly onDispose?: ((dispose: () => void | Promise<void>) => unknown) | undefined } | undefined
}

/**
 * @since 0.1.0
 */
export default {
  id: "aios",
  name: "AIOS kernel",
  description: "Routes OpenClaw model calls through the AIOS kernel (or any OpenAI-compatible endpoint) with effect-aios.",
  register(api: PluginApi): void {
    const provider = makeAiosProvider((api.pluginConfig ?? {}) as AiosConfigInput, { logger: api.logger })
    api.lifecycle?.onDispose?.(provider.dispose)
    api.registerProvider(provider)
  }
}
