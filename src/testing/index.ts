/**
 * The `effect-aios/testing` entry: a ReferenceKernel (an AIOS- and OpenAI-compatible server with scripted faults)
 * for tests, benchmarks, demos and plugin authors.
 *
 * @since 0.2.0
 */
export * as ReferenceKernel from "./ReferenceKernel.js"
