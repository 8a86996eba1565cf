/**
 * The one configuration shape of effect-aios: decoded from plain options (the OpenClaw plugin config,
 * `plugins.entries.aios.config`) or read from the environment through Effect's `Config`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const PositiveInt = Schema.Int.pipe(Schema.positive())

/** An absolute `http:` or `https:` URL, stored without a trailing slash. */
export const BaseUrl = Schema.Trim.pipe(
  Schema.filter((s) => {
    try {
      const u = new URL(s)
      return u.protocol === "http:" || u.protocol === "https:" ? undefined : "must be an http(s) URL"
    } catch {
      return "must be an absolute http(s) URL"
    }
  }, { identifier: "BaseUrl" }),
  Schema.transform(Schema.String, { strict: true, decode: (s) => s.replace(/\/+$/, ""), encode: (s) => s })
)

/** Per-turn retry policy (see `TurnRetry`). */
export const RetryOptions = Schema.Struct({
  maxRetries: Schema.optionalWith(NonNegativeInt, { default: () => 3 }),
  delayMs: Schema.optionalWith(NonNegativeInt, { default: () => 20_000 }),
  maxDelayMs: Schema.optionalWith(NonNegativeInt, { default: () => 60_000 }),
  jitter: Schema.optionalWith(Schema.Literal("none", "full"), { default: () => "none" as const }),
  /** What to retry: rate limits only, or transient failures too (timeouts, unreachable, 408/502/503). */
  retryOn: Schema.optionalWith(Schema.Literal("rate_limit", "transient"), { default: () => "transient" as const }),
  /** Base wait for transient failures, doubled each retry up to `maxDelayMs`. */
  transientDelayMs: Schema.optionalWith(NonNegativeInt, { default: () => 1_000 }),
  /**
   * A refused connection (nothing listens at the URL): `"fail"` ends the turn at once so the host can fall back to
   * another model; `"retry"` treats it as any other transient failure.
   */
  onRefused: Schema.optionalWith(Schema.Literal("fail", "retry"), { default: () => "fail" as const })
})
export type RetryOptions = typeof RetryOptions.Type

/**
 * Client-side limits, applied per model: a concurrency cap, and optionally a token bucket on call starts
 * (`rate.limit` starts per `rate.intervalMs`).
 */
export const Limits = Schema.Struct({
  concurrency: Schema.optionalWith(PositiveInt, { default: () => 4 }),
  rate: Schema.optional(Schema.Struct({ limit: PositiveInt, intervalMs: PositiveInt }))
})
export type Limits = typeof Limits.Type

/** Per-model overrides for the OpenClaw model rows and the client-side limits. */
export const ModelOverride = Schema.Struct({
  contextWindow: Schema.optional(PositiveInt),
  maxTokens: Schema.optional(PositiveInt),
  reasoning: Schema.optional(Schema.Boolean),
  input: Schema.optional(Schema.Array(Schema.Literal("text", "image"))),
  limits: Schema.optional(Limits)
})
export type ModelOverride = typeof ModelOverride.Type

/**
 * The configuration Schema. Decoding fills in every default, so `AiosConfig.Type` is complete.
 *
 * @since 0.1.0
 */
export const AiosConfigSchema = Schema.Struct({
  /** Which wire protocol `baseUrl` speaks: the AIOS kernel, or an OpenAI-compatible `/v1` endpoint. */
  backend: Schema.optionalWith(Schema.Literal("aios", "openai-compatible"), { default: () => "aios" as const }),
  baseUrl: Schema.optionalWith(BaseUrl, { default: () => "http://localhost:8000" }),
  /** API keys for OpenAI-compatible endpoints, used round-robin; held as `Redacted`. */
  apiKeys: Schema.optionalWith(Schema.Array(Schema.Redacted(Schema.NonEmptyTrimmedString)), { default: () => [] }),
  /** The model `Llm` uses when a call names none. */
  defaultModel: Schema.optional(Schema.NonEmptyTrimmedString),
  /** Short names for models, e.g. `{ "haiku": "claude-3-5-haiku" }`. */
  aliases: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.NonEmptyTrimmedString }), {
    default: () => ({})
  }),
  limits: Schema.optionalWith(Limits, { default: () => Schema.decodeSync(Limits)({}) }),
  agentName: Schema.optionalWith(Schema.NonEmptyTrimmedString, { default: () => "openclaw" }),
  requestTimeoutMs: Schema.optionalWith(PositiveInt, { default: () => 120_000 }),
  catalogTtlMs: Schema.optionalWith(NonNegativeInt, { default: () => 60_000 }),
  toolCalls: Schema.optionalWith(Schema.Literal("tags", "native"), { default: () => "tags" as const }),
  retry: Schema.optionalWith(RetryOptions, { default: () => Schema.decodeSync(RetryOptions)({}) }),
  /** A deadline over a whole turn: every attempt, wait and the model-list check; a retry that cannot fit is not started. */
  turnTimeoutMs: Schema.optionalWith(PositiveInt, { default: () => 300_000 }),
  /** A deadline over one whole request, however its bytes trickle in (`requestTimeoutMs` is the idle timeout). */
  callTimeoutMs: Schema.optionalWith(PositiveInt, { default: () => 300_000 }),
  /** The largest response body read, in bytes; a larger one is a typed error. */
  maxResponseBytes: Schema.optionalWith(PositiveInt, { default: () => 16 * 1024 * 1024 }),
  /** Reasoning (`reasoning_content`, `<think>` in the text): thinking events, stripped, or kept as text. */
  thinking: Schema.optionalWith(Schema.Literal("events", "strip", "text"), { default: () => "events" as const }),
  /** Several kernels (or `/v1` endpoints) behind one provider; when set, used instead of `baseUrl`. */
  kernels: Schema.optional(Schema.Array(BaseUrl)),
  /** Kernel health in a pool: how long a failing kernel is ejected before a probe may bring it back. */
  pool: Schema.optionalWith(
    Schema.Struct({ ejectMs: Schema.optionalWith(PositiveInt, { default: () => 30_000 }) }),
    { default: () => ({ ejectMs: 30_000 }) }
  ),
  /** Limits, key cooldowns and kernel ejections shared by every process using this Redis. */
  redis: Schema.optional(Schema.Struct({
    url: Schema.String.pipe(Schema.filter((s) => /^rediss?:\/\//.test(s) || "must be a redis:// or rediss:// URL")),
    prefix: Schema.optionalWith(Schema.NonEmptyTrimmedString, { default: () => "effect-aios" })
  })),
  models: Schema.optionalWith(Schema.Record({ key: Schema.String, value: ModelOverride }), {
    default: () => ({})
  })
})

/** Complete, validated configuration. */
export type AiosConfigValues = typeof AiosConfigSchema.Type
/** What a user may write: every key optional. */
export type AiosConfigInput = typeof AiosConfigSchema.Encoded

/**
 * Invalid configuration. The message names each offending key and its value.
 *
 * @since 0.1.0
 */
export class AiosConfigError extends Data.TaggedError("AiosConfigError")<{
  readonly issues: ReadonlyArray<string>
}> {
  override get message(): string {
    return `Invalid effect-aios configuration: ${this.issues.join("; ")}`
  }
}

const render = (value: unknown): string => {
  const json = JSON.stringify(value)
  return json === undefined ? String(value) : json.length > 80 ? `${json.slice(0, 77)}...` : json
}

const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>(
    (acc, key) => (acc !== null && typeof acc === "object" ? (acc as Record<PropertyKey, unknown>)[key] : undefined),
    input
  )

const toConfigError = (input: unknown, error: ParseResult.ParseError): AiosConfigError =>
  new AiosConfigError({
    issues: ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
      const key = issue.path.map(String).join(".") || "(root)"
      // Never echo a key, even an invalid one.
      if (issue.path[0] === "apiKeys") return `${key} is invalid (expected a non-empty string)`
      return issue._tag === "Missing"
        ? `${key} is required`
        : `${key} = ${render(valueAt(input, issue.path))} is invalid (${issue.message.split("\n")[0]})`
    })
  })

/**
 * Decodes plain options (e.g. the OpenClaw plugin config) into a complete configuration.
 *
 * @since 0.1.0
 */
export const decode = (input: unknown = {}): Either.Either<AiosConfigValues, AiosConfigError> =>
  Schema.decodeUnknownEither(AiosConfigSchema, { errors: "all", onExcessProperty: "ignore" })(input ?? {}).pipe(
    Either.mapLeft((e) => toConfigError(input, e))
  )

/**
 * The configuration service.
 *
 * @since 0.1.0
 */
export class AiosConfig extends Context.Tag("effect-aios/AiosConfig")<AiosConfig, AiosConfigValues>() {}

/**
 * A layer from plain options; fails with `AiosConfigError` naming the bad keys.
 *
 * @since 0.1.0
 */
export const layer = (options: AiosConfigInput | undefined = {}): Layer.Layer<AiosConfig, AiosConfigError> =>
  Layer.effect(AiosConfig, decode(options))

/**
 * Reads `AIOS_URL`, `AIOS_BACKEND`, `AIOS_API_KEYS` (comma-separated), `AIOS_DEFAULT_MODEL`, `AIOS_AGENT_NAME`,
 * `AIOS_REQUEST_TIMEOUT_MS`, `AIOS_CATALOG_TTL_MS`, `AIOS_TURN_TIMEOUT_MS`, `AIOS_CALL_TIMEOUT_MS`, `AIOS_KERNELS`
 * (comma-separated), `AIOS_REDIS_URL`, `AIOS_TOOL_CALLS` and `AIOS_MAX_RETRIES`,
 * `AIOS_RETRY_DELAY_MS`, `AIOS_RETRY_MAX_DELAY_MS`, `AIOS_RETRY_JITTER` on top of `options`.
 *
 * @since 0.1.0
 */
export const config = (options: AiosConfigInput = {}): Config.Config<AiosConfigValues> => {
  const str = (name: string) => Config.option(Config.string(name))
  const num = (name: string) => Config.option(Config.number(name))
  return Config.all({
    baseUrl: str("AIOS_URL"),
    backend: str("AIOS_BACKEND"),
    apiKeys: Config.option(Config.redacted("AIOS_API_KEYS")),
    defaultModel: str("AIOS_DEFAULT_MODEL"),
    agentName: str("AIOS_AGENT_NAME"),
    requestTimeoutMs: num("AIOS_REQUEST_TIMEOUT_MS"),
    catalogTtlMs: num("AIOS_CATALOG_TTL_MS"),
    turnTimeoutMs: num("AIOS_TURN_TIMEOUT_MS"),
    callTimeoutMs: num("AIOS_CALL_TIMEOUT_MS"),
    kernels: str("AIOS_KERNELS"),
    redisUrl: str("AIOS_REDIS_URL"),
    toolCalls: str("AIOS_TOOL_CALLS"),
    maxRetries: num("AIOS_MAX_RETRIES"),
    delayMs: num("AIOS_RETRY_DELAY_MS"),
    maxDelayMs: num("AIOS_RETRY_MAX_DELAY_MS"),
    jitter: str("AIOS_RETRY_JITTER")
  }).pipe(
    Config.mapOrFail((env) => {
      const pick = <A>(o: Option.Option<A>) => Option.getOrUndefined(o)
      const defined = <T extends Record<string, unknown>>(o: T) =>
        Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
      const input = {
        ...options,
        ...defined({
          baseUrl: pick(env.baseUrl),
          backend: pick(env.backend),
          apiKeys: Option.getOrUndefined(
            Option.map(env.apiKeys, (keys) => Redacted.value(keys).split(",").map((k) => k.trim()).filter((k) => k !== ""))
          ),
          defaultModel: pick(env.defaultModel),
          agentName: pick(env.agentName),
          requestTimeoutMs: pick(env.requestTimeoutMs),
          catalogTtlMs: pick(env.catalogTtlMs),
          turnTimeoutMs: pick(env.turnTimeoutMs),
          callTimeoutMs: pick(env.callTimeoutMs),
          kernels: Option.getOrUndefined(
            Option.map(env.kernels, (list) => list.split(",").map((u) => u.trim()).filter((u) => u !== ""))
          ),
          redis: Option.getOrUndefined(Option.map(env.redisUrl, (url) => ({ ...options.redis, url }))),
          toolCalls: pick(env.toolCalls)
        }),
        retry: {
          ...options.retry,
          ...defined({
            maxRetries: pick(env.maxRetries),
            delayMs: pick(env.delayMs),
            maxDelayMs: pick(env.maxDelayMs),
            jitter: pick(env.jitter)
          })
        }
      }
      return Either.mapLeft(decode(input), (e) => ConfigError.InvalidData([], e.message))
    })
  )
}

/**
 * A layer from the environment (see `config`), over `options`.
 *
 * @since 0.1.0
 */
export const layerConfig = (options: AiosConfigInput = {}): Layer.Layer<AiosConfig, ConfigError.ConfigError> =>
  Layer.effect(AiosConfig, config(options))

/** The defaults, complete. */
export const defaults: AiosConfigValues = Either.getOrThrow(decode({}))

/** Builds a complete configuration from options, or fails with `AiosConfigError`. */
export const make = (options: AiosConfigInput = {}): Effect.Effect<AiosConfigValues, AiosConfigError> =>
  decode(options)
