/**
 * `makeAiosProvider`: the effect-aios services as an OpenClaw provider (`aios`, models `aios/<name>`). The hooks
 * translate; policy (caching, retries, parsing, classification) lives in the services. The Effect runtime behind
 * them is one `ManagedRuntime`, built on the first hook that needs it, never in `register`.
 *
 * OpenClaw starts a fresh plugin instance for every `api.runtime.llm.complete` call and disposes it right after,
 * so both ends are kept short: no hook waits for the model list before the turn starts, and `dispose` releases
 * everything synchronously (node:http agents are destroyed in place; nothing waits on a socket's close event),
 * so it completes even when the host blocks its event loop right after asking.
 *
 * @since 0.2.0
 */
import type { StreamFn } from "@openclaw/ai"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Aios from "../Aios.js"
import * as AiosConfig from "../AiosConfig.js"
import * as TextLogger from "../internal/textLogger.js"
import { ModelCatalog } from "../ModelCatalog.js"
import * as Failover from "./failover.js"
import { AUTH_ENV_VAR, type ModelRow, PROVIDER_ID, providerEntry, type ProviderEntry, rowFor, type RuntimeModel } from "./models.js"
import { makeStreamFn } from "./stream.js"

/**
 * The context OpenClaw passes to model hooks (the fields used here).
 *
 * @since 0.2.0
 */
export interface ModelHookContext {
  readonly provider: string
  readonly modelId: string
}

/**
 * OpenClaw's logger for plugins.
 *
 * @since 0.2.0
 */
export type HostLogger = TextLogger.Sink

/**
 * What an auth method's `run` returns: a config patch with the loopback provider entry.
 *
 * @since 0.2.0
 */
export interface AuthResult {
  readonly profiles: Array<never>
  readonly configPatch: { readonly models: { readonly providers: Record<string, ProviderEntry> } }
  readonly defaultModel?: string
  readonly notes: Array<string>
}

/**
 * The part of OpenClaw's `ProviderPlugin` this provider implements (checked against the real type by the e2e
 * contract test; declared here so the plugin needs nothing from the host at build or run time).
 *
 * @since 0.2.0
 */
export interface AiosProviderPlugin {
  readonly id: string
  readonly label: string
  readonly docsPath: string
  readonly envVars: Array<string>
  readonly auth: Array<{
    readonly id: string
    readonly label: string
    readonly hint: string
    readonly kind: "custom"
    readonly run: (ctx: unknown) => Promise<AuthResult>
  }>
  readonly catalog: { readonly order: "simple"; readonly run: (ctx: unknown) => Promise<{ provider: ProviderEntry } | null> }
  readonly resolveDynamicModel: (ctx: ModelHookContext) => RuntimeModel | undefined
  readonly prepareDynamicModel: (ctx: ModelHookContext) => Promise<void>
  readonly createStreamFn: (ctx: ModelHookContext) => StreamFn
  readonly classifyFailoverReason: (ctx: Failover.HookContext) => Failover.FailoverReason | null
  readonly matchesContextOverflowError: (ctx: Failover.HookContext) => boolean
  /** Releases the runtime (sockets, caches); the plugin entry calls it when the host disposes the plugin. */
  readonly dispose: () => Promise<void>
}

/** Effect logs go to the host's logger: stdout belongs to OpenClaw (its `--json` output). */
const hostLogger = (logger: HostLogger): Layer.Layer<never> => Logger.replace(Logger.defaultLogger, TextLogger.make(logger))

/**
 * Writes to stderr, never stdout: the logger when the host gives none.
 *
 * @since 0.2.0
 */
export const stderrLogger: HostLogger = {
  info: (m) => process.stderr.write(`${m}\n`),
  warn: (m) => process.stderr.write(`${m}\n`),
  error: (m) => process.stderr.write(`${m}\n`)
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Builds the provider. Options are the AiosConfig shape (`plugins.entries.aios.config`); an invalid one makes
 * every hook report the configuration error instead of failing `register`.
 *
 * @since 0.2.0
 */
export const makeAiosProvider = (
  options: AiosConfig.AiosConfigInput = {},
  host: { readonly logger?: HostLogger | undefined } = {}
): AiosProviderPlugin => {
  const decoded = AiosConfig.decode(options)
  const config = Either.getOrElse(decoded, () => AiosConfig.defaults)
  const logger = host.logger ?? stderrLogger
  let runtime: ManagedRuntime.ManagedRuntime<Aios.Services, never> | undefined
  // Tracing off: nobody reads this runtime's spans, and each would cost the turn a span and trace headers.
  // node:http rather than undici: its agents are destroyed synchronously, and the bundled plugin stays small.
  // Keep-alive agents, so a turn reuses a connection rather than opening one (Node's `Agent` default is not to).
  // Built only when the options decoded (every caller checks first), from the values already decoded.
  const getRuntime = () =>
    runtime ??= ManagedRuntime.make(
      Aios.layerWith(Layer.succeed(AiosConfig.AiosConfig, config)).pipe(
        Layer.provide(NodeHttpClient.layerWithoutAgent.pipe(Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true })))),
        Layer.provide(Layer.merge(hostLogger(logger), Layer.setTracerEnabled(false)))
      )
    )
  /** Runs an effect on the runtime; rejects with the error itself (not a FiberFailure), so its message shows. */
  const run = <A, E>(effect: Effect.Effect<A, E, Aios.Services>): Promise<A> =>
    Either.isLeft(decoded)
      ? Promise.reject(decoded.left)
      : getRuntime().runPromiseExit(effect).then((exit) =>
        Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause))
      )
  const rows = (): Promise<ReadonlyArray<ModelRow>> =>
    run(Effect.flatMap(ModelCatalog, (catalog) => catalog.list)).then((models) =>
      models.map((m) => rowFor(config, m.name))
    )
  const runtimeModel = (name: string): RuntimeModel => ({
    ...rowFor(config, name),
    provider: PROVIDER_ID,
    api: "openai-completions",
    baseUrl: config.baseUrl
  })
  const turns = makeStreamFn(() => Either.isLeft(decoded) ? Effect.fail(decoded.left) : getRuntime().runtimeEffect)
  // A failed call is logged here: OpenClaw shows its own line for an agent turn, but a plugin's
  // `api.runtime.llm.complete` gets only `{ text: "", stopReason: "error" }` and the reason would be lost.
  const streamFn: StreamFn = (model, context, options) => {
    const stream = turns(model, context, options)
    void Promise.resolve(stream).then((s) => s.result()).then((message) => {
      if (message.stopReason === "error") {
        logger.warn(`[aios] ${PROVIDER_ID}/${message.model} failed: ${message.errorMessage ?? "no details"}`)
      }
    }, () => undefined)
    return stream
  }

  return {
    id: PROVIDER_ID,
    label: "AIOS kernel",
    docsPath: "/providers/aios",
    envVars: [AUTH_ENV_VAR],
    auth: [{
      id: "local",
      label: "Local AIOS kernel",
      hint: `No key needed: the kernel at ${config.baseUrl} holds the provider keys`,
      kind: "custom",
      run: async () => {
        const models = await rows()
        return {
          profiles: [],
          configPatch: { models: { providers: { [PROVIDER_ID]: providerEntry(config.baseUrl, models) } } },
          ...(models[0] !== undefined ? { defaultModel: `${PROVIDER_ID}/${models[0].id}` } : {}),
          notes: [`${models.length} model(s) from the AIOS kernel at ${config.baseUrl}`]
        }
      }
    }],
    catalog: {
      order: "simple",
      run: async () => {
        try {
          return { provider: providerEntry(config.baseUrl, await rows()) }
        } catch (error) {
          logger.warn(`[aios] model catalog unavailable: ${messageOf(error)}`)
          return null
        }
      }
    },
    resolveDynamicModel: (ctx) => {
      if (Either.isLeft(decoded)) return undefined
      // Sync hook, no I/O: a name the cached list lacks is unknown; before any list (or while the runtime is still
      // being built), any name resolves, and the turn checks it against the server before calling.
      const cached = runtime === undefined
        ? Option.none()
        : Exit.getOrElse(runtime.runSyncExit(Effect.flatMap(ModelCatalog, (c) => c.cached)), () => Option.none())
      return Option.isSome(cached) && !cached.value.some((m) => m.name === ctx.modelId)
        ? undefined
        : runtimeModel(ctx.modelId)
    },
    // Starts the model-list fetch without waiting for it: the turn that follows joins the fetch in flight, so the
    // list costs no extra round trip before the call (a failure here is the turn's to report).
    prepareDynamicModel: async () => {
      void rows().catch(() => undefined)
    },
    createStreamFn: () => streamFn,
    classifyFailoverReason: (ctx) => Failover.classifyHookContext(ctx),
    // The whole context, so our own `errorCode` decides before the words do.
    matchesContextOverflowError: (ctx) => Failover.isContextOverflow(ctx),
    dispose: async () => {
      const current = runtime
      runtime = undefined
      await current?.dispose()
    }
  }
}
