/**
 * What the commands share: the `--url` and `--config` options, the effective kernel configuration (flag, then
 * environment, then the plugin's own config, then defaults), the service stack over it, logs on stderr, and
 * plain-text tables.
 *
 * @since 0.1.0
 */
import * as Options from "@effect/cli/Options"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Aios from "../../Aios.js"
import * as AiosConfig from "../../AiosConfig.js"
import { isBackendError } from "../../BackendError.js"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"

/** `--url`: the kernel's base URL. */
export const urlOption = Options.text("url").pipe(
  Options.withDescription("Kernel base URL (default: $AIOS_URL, else the plugin's configured baseUrl, else http://localhost:8000)"),
  Options.optional
)

/** `--config`: the OpenClaw config file. */
export const configOption = Options.text("config").pipe(
  Options.withDescription(
    "OpenClaw config file (default: $OPENCLAW_CONFIG_PATH, else $OPENCLAW_STATE_DIR/openclaw.json, else ~/.openclaw/openclaw.json)"
  ),
  Options.optional
)

/** Status checks should not wait the two minutes a model call may take. */
export const PROBE_TIMEOUT_MS = 10_000

/**
 * The configuration a command talks to the kernel with: `--url` over the environment (`AIOS_URL`, …) over
 * `base` (e.g. the plugin's config from the OpenClaw file) over the defaults.
 *
 * @since 0.1.0
 */
export const kernelConfig = (
  url: Option.Option<string>,
  base: AiosConfig.AiosConfigInput = {},
  source = "the environment (AIOS_*)"
): Effect.Effect<AiosConfig.AiosConfigValues, CliError> =>
  Effect.gen(function*() {
    const values = yield* AiosConfig.config(base).pipe(
      Effect.mapError((e) => new CliError({ message: `Invalid configuration in ${source}: ${configErrorText(e)}` }))
    )
    if (Option.isNone(url)) return values
    const decoded = Schema.decodeUnknownEither(AiosConfig.BaseUrl)(url.value)
    if (Either.isLeft(decoded)) {
      return yield* new CliError({ message: `--url ${JSON.stringify(url.value)} is not an absolute http(s) URL` })
    }
    return { ...values, baseUrl: decoded.right }
  })

/**
 * `--url` names one kernel: it replaces a configured `kernels` list.
 *
 * @since 0.2.0
 */
export const oneKernel = (values: AiosConfig.AiosConfigValues): AiosConfig.AiosConfigValues => {
  const { kernels: _, ...rest } = values
  return rest
}

/**
 * The configuration a command runs with: the environment, then `--url` replacing the kernel (and any pool).
 *
 * @since 0.2.0
 */
export const commandConfig = (url: Option.Option<string>, base: AiosConfig.AiosConfigInput = {}) =>
  Effect.map(kernelConfig(url, base), (values) => (Option.isSome(url) ? oneKernel(values) : values))

const configErrorText = (e: unknown): string => {
  const text = String(e)
  // Effect's ConfigError renders as `(Invalid data at : "<message>")`; keep the message.
  const inner = /"(.*)"\)?$/.exec(text)
  return inner?.[1] ?? text
}

/**
 * Effect logs (retries, warnings) as lines on the `Output`'s stderr, and no other logger (a host's pretty
 * logger writes to stdout): stdout carries the command's result only. The logger calls `Output.err`
 * synchronously, from inside the log call.
 *
 * @since 0.1.0
 */
export const stderrLogger: Layer.Layer<never, never, Output.Output> = Layer.unwrapEffect(
  Effect.map(Output.Output, (output) =>
    Layer.locallyScoped(
      FiberRef.currentLoggers,
      HashSet.make(Logger.make<unknown, void>(({ annotations, logLevel, message }) => {
        const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
        const extra = [...annotations].map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ")
        Effect.runSync(output.err(`effect-aios ${logLevel.label.toLowerCase()}: ${text}${extra === "" ? "" : ` (${extra})`}\n`))
      }))
    ))
)

/**
 * The service stack over fixed configuration values, on Node's HTTP client.
 *
 * @since 0.1.0
 */
export const stack = (values: AiosConfig.AiosConfigValues): Layer.Layer<Aios.Services> =>
  Aios.layerWith(Layer.succeed(AiosConfig.AiosConfig, values)).pipe(Layer.provide(NodeHttpClient.layerUndici))

/** A backend error (or anything with a message) as the command's error. */
export const toCliError = (e: unknown): CliError =>
  e instanceof CliError
    ? e
    : new CliError({
      message: isBackendError(e) && e._tag === "BackendUnreachable" && e.kind === "unreachable"
        ? `${e.message} (For a local demo kernel: effect-aios kernel serve)`
        : typeof e === "object" && e !== null && "message" in e
        ? String(e.message)
        : String(e)
    })

/** A plain-text table, columns padded to their widest cell; `right` aligns a column to the right. */
export const table = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  right: ReadonlyArray<boolean> = []
): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const render = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd()
  return [render(headers), render(widths.map((w) => "-".repeat(w))), ...rows.map(render)].join("\n")
}
