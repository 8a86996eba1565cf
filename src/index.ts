/**
 * effect-aios: Effect services for the AIOS kernel and OpenAI-compatible endpoints.
 *
 * @since 0.1.0
 */
export * as Aios from "./Aios.js"
export * as AiosBackend from "./AiosBackend.js"
export * as AiosConfig from "./AiosConfig.js"
export * as ApiKeys from "./ApiKeys.js"
export * as Backend from "./Backend.js"
export * as BackendError from "./BackendError.js"
export * as Llm from "./Llm.js"
export * as LlmPromise from "./LlmPromise.js"
export * as ModelCatalog from "./ModelCatalog.js"
export * as OpenAiBackend from "./OpenAiBackend.js"
export * as RetryAfter from "./RetryAfter.js"
export * as ToolTags from "./ToolTags.js"
export * as Turn from "./Turn.js"
export * as TurnRetry from "./TurnRetry.js"
