/**
 * `makeAiosProvider`: the effect-aios services as an OpenClaw provider (`aios`, models `aios/<name>`). The hooks
 * translate; policy (caching, retries, parsing, classification) lives in the services. The Effect runtime
 * behind them is built once, on the first hook that needs it, never in `register`.
 *
 * @since 0.1.0
 */
import type { StreamFn } from "@openclaw/ai"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Aios from "../Aios.js"
import * as AiosConfig from "../AiosConfig.js"
import * as Failover from "../Failover.js"
import { ModelCatalog, type ModelRow, rowFor } from "../ModelCatalog.js"
import { makeStreamFn, type TurnRunner } from "./stream.js"

/** The provider id, and the prefix of model refs (`aios/<kernel model name>`). */
export const PROVIDER_ID = "aios"
/** The env var that authorizes the provider for agent turns (any value: the kernel holds the real keys). */
export const AUTH_ENV_VAR = "AIOS_API_KEY"

/** A model as OpenClaw resolves it at run time: a catalog row plus where it lives. */
export interface RuntimeModel extends ModelRow {
  readonly provider: string
  readonly api: "openai-completions"
  readonly baseUrl: string
}

/** The context OpenClaw passes to model hooks (the fields used here). */
export interface ModelHookContext {
  readonly provider: string
  readonly modelId: string
}

/** OpenClaw's logger for plugins. */
export interface HostLogger {
  readonly debug?: ((message: string) => void) | undefined
  readonly info: (message: string) => void
  readonly warn: (message: string) => void
  readonly error: (message: string) => void
}

/** What an auth method's `run` returns: a config patch with the loopback provider entry. */
export interface AuthResult {
  readonly profiles: Array<never>
  readonly configPatch: { readonly models: { readonly providers: Record<string, ProviderEntry> } }
  readonly defaultModel?: string
  readonly notes: Array<string>
}

/** A `models.providers.aios` config entry (OpenClaw's `ModelProviderConfig`). */
export interface ProviderEntry {
  readonly baseUrl: string
  readonly api: "openai-completions"
  readonly models: Array<ModelRow>
}

/**
 * The part of OpenClaw's `ProviderPlugin` this provider implements (checked against the real type by the
 * e2e contract test; declared here so the plugin needs nothing from the host at build or run time).
 *
 * @since 0.1.0
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
const hostLogger = (logger: HostLogger) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, logLevel, message }) => {
      const text = [
        `[aios] ${Array.isArray(message) ? message.join(" ") : String(message)}`,
        ...[...annotations].map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      ].join(" ")
      if (logLevel._tag === "Error" || logLevel._tag === "Fatal") logger.error(text)
      else if (logLevel._tag === "Warning") logger.warn(text)
      else if (logLevel._tag === "Info") logger.info(text)
      else logger.debug?.(text)
    })
  )

/** Writes to stderr, never stdout. */
export const stderrLogger: HostLogger = {
  info: (m) => process.stderr.write(`${m}\n`),
  warn: (m) => process.stderr.write(`${m}\n`),
  error: (m) => process.stderr.write(`${m}\n`)
}

/**
 * Builds the provider. Options are the AiosConfig shape (`plugins.entries.aios.config`); an invalid one makes
 * every hook report the configuration error instead of failing `register`.
 *
 * @since 0.1.0
 */
export const makeAiosProvider = (
  options: AiosConfig.AiosConfigInput = {},
  host: { readonly logger?: HostLogger | undefined } = {}
): AiosProviderPlugin => {
  const decoded = AiosConfig.decode(options)
  const config = Either.getOrElse(decoded, () => AiosConfig.defaults)
  const logger = host.logger ?? stderrLogger
  let runtime: ManagedRuntime.ManagedRuntime<Aios.Services, AiosConfig.AiosConfigError> | undefined
  const getRuntime = () => {
    if (Either.isLeft(decoded)) throw decoded.left
    // Tracing off: this runtime has no tracer but the native one, which nobody reads, so a span per request
    // (and its trace headers) is pure per-turn cost here (bench/adapter.ts). Effect users of `Aios.layer` keep them.
    runtime ??= ManagedRuntime.make(
      Aios.layer(options).pipe(Layer.provide(Layer.merge(hostLogger(logger), Layer.setTracerEnabled(false))))
    )
    return runtime
  }
  const runner = (): TurnRunner => getRuntime()
  const row = (name: string): RuntimeModel => ({
    ...rowFor(config, name),
    provider: PROVIDER_ID,
    api: "openai-completions",
    baseUrl: config.baseUrl
  })
  const rows = () => getRuntime().runPromise(Effect.flatMap(ModelCatalog, (c) => c.rows))
  const entry = (models: ReadonlyArray<ModelRow>): ProviderEntry => ({
    baseUrl: config.baseUrl,
    api: "openai-completions",
    models: [...models]
  })

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
          configPatch: { models: { providers: { [PROVIDER_ID]: entry(models) } } },
          ...(models[0] !== undefined ? { defaultModel: `${PROVIDER_ID}/${models[0].id}` } : {}),
          notes: [`${models.length} model(s) from the AIOS kernel at ${config.baseUrl}`]
        }
      }
    }],
    catalog: {
      order: "simple",
      run: async () => {
        try {
          return { provider: entry(await rows()) }
        } catch (error) {
          logger.warn(`[aios] model catalog unavailable: ${error instanceof Error ? error.message : String(error)}`)
          return null
        }
      }
    },
    resolveDynamicModel: (ctx) => {
      if (Either.isLeft(decoded)) return undefined
      // Sync hook, no I/O: a name the cached list lacks is unknown; before any list, any name resolves (the turn
      // validates it against the kernel before /query).
      const cached = runtime === undefined
        ? Option.none()
        : runtime.runSync(Effect.flatMap(ModelCatalog, (c) => c.cached))
      return Option.isSome(cached) && !cached.value.some((m) => m.name === ctx.modelId) ? undefined : row(ctx.modelId)
    },
    prepareDynamicModel: async () => {
      await rows().catch(() => undefined)
    },
    createStreamFn: () => makeStreamFn(runner),
    classifyFailoverReason: (ctx) => Failover.classifyHookContext(ctx),
    matchesContextOverflowError: (ctx) => Failover.isContextOverflow(ctx.errorMessage),
    dispose: async () => {
      const current = runtime
      runtime = undefined
      await current?.dispose()
    }
  }
}
