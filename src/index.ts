/**
 * effect-aios: Effect services for the AIOS kernel and OpenAI-compatible endpoints.
 *
 * @since 0.1.0
 */
export * as AiosConfig from "./AiosConfig.js"
export * as KernelClient from "./KernelClient.js"
export * as KernelError from "./KernelError.js"
export * as ModelCatalog from "./ModelCatalog.js"
export * as ReferenceKernel from "./ReferenceKernel.js"
