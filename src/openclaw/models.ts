/**
 * OpenClaw's view of the catalog: the provider id, model rows (`ModelDefinitionConfig`) and the
 * `models.providers.aios` entry. Pure.
 *
 * @since 0.2.0
 */
import type { AiosConfigValues } from "../AiosConfig.js"

/** The provider id, and the prefix of model refs (`aios/<model name>`). @since 0.2.0 */
export const PROVIDER_ID = "aios"

/** The env var that authorizes the provider for agent turns (any value: the kernel holds the real keys). @since 0.2.0 */
export const AUTH_ENV_VAR = "AIOS_API_KEY"

/** The AIOS kernel caps every reply at 1000 tokens, whatever the request says. @since 0.2.0 */
export const DEFAULT_MAX_TOKENS = 1000

/** The kernel does not report context windows; a conservative default, overridable per model. @since 0.2.0 */
export const DEFAULT_CONTEXT_WINDOW = 128_000

/**
 * An OpenClaw model definition row (`ModelDefinitionConfig`).
 *
 * @since 0.2.0
 */
export interface ModelRow {
  readonly id: string
  readonly name: string
  readonly reasoning: boolean
  // Mutable arrays: the row goes to OpenClaw, whose ModelDefinitionConfig declares them so.
  readonly input: Array<"text" | "image">
  readonly cost: { readonly input: number; readonly output: number; readonly cacheRead: number; readonly cacheWrite: number }
  readonly contextWindow: number
  readonly maxTokens: number
}

/**
 * A `models.providers.aios` config entry (OpenClaw's `ModelProviderConfig`).
 *
 * @since 0.2.0
 */
export interface ProviderEntry {
  readonly baseUrl: string
  readonly api: "openai-completions"
  readonly models: Array<ModelRow>
}

/**
 * A model as OpenClaw resolves it at run time: a row plus where it lives.
 *
 * @since 0.2.0
 */
export interface RuntimeModel extends ModelRow {
  readonly provider: string
  readonly api: "openai-completions"
  readonly baseUrl: string
}

/**
 * The row for `name`: defaults plus the per-model overrides in `config.models`.
 *
 * @since 0.2.0
 */
export const rowFor = (config: Pick<AiosConfigValues, "models">, name: string): ModelRow => {
  const o = config.models[name] ?? {}
  return {
    id: name,
    name,
    reasoning: o.reasoning ?? false,
    input: o.input !== undefined ? [...o.input] : ["text"],
    cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
    contextWindow: o.contextWindow ?? DEFAULT_CONTEXT_WINDOW,
    maxTokens: o.maxTokens ?? DEFAULT_MAX_TOKENS
  }
}

/**
 * The provider entry for a base URL and its rows.
 *
 * @since 0.2.0
 */
export const providerEntry = (baseUrl: string, rows: ReadonlyArray<ModelRow>): ProviderEntry => ({
  baseUrl,
  api: "openai-completions",
  models: [...rows]
})
