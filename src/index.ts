/**
 * effect-aios: Effect services for the AIOS kernel and OpenAI-compatible endpoints.
 *
 * @since 0.1.0
 */
export * as Aios from "./Aios.js"
export * as AiosConfig from "./AiosConfig.js"
export * as ApiKeys from "./ApiKeys.js"
export * as Failover from "./Failover.js"
export * as KernelClient from "./KernelClient.js"
export * as KernelError from "./KernelError.js"
export * as ModelCatalog from "./ModelCatalog.js"
export * as RetryAfter from "./RetryAfter.js"
export * as ToolTags from "./ToolTags.js"
export * as Turn from "./Turn.js"
export * as TurnRetry from "./TurnRetry.js"
export * as Llm from "./Llm.js"
