/**
 * `effect-aios models [--url]`: the kernel's models as a table; with `kernels` configured (`AIOS_KERNELS`), the
 * union of every kernel's models. `--url` names one kernel, in place of a configured list.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { ModelCatalog } from "../../ModelCatalog.js"
import { rowFor } from "../../openclaw/models.js"
import * as Output from "../Output.js"
import { commandConfig, PROBE_TIMEOUT_MS, stack, table, toCliError, urlOption } from "./shared.js"

/**
 * @since 0.1.0
 */
export const models = Command.make("models", { url: urlOption }, ({ url }) =>
  Effect.gen(function*() {
    const config = yield* commandConfig(url, { requestTimeoutMs: PROBE_TIMEOUT_MS })
    const pool = config.kernels !== undefined && config.kernels.length > 0 ? config.kernels : undefined
    const list = yield* Effect.flatMap(ModelCatalog, (catalog) => catalog.list).pipe(
      Effect.provide(stack(config)),
      Effect.mapError(toCliError)
    )
    const rows = list.map((m) => {
      const row = rowFor(config, m.name)
      return [m.name, m.backend ?? "-", String(row.contextWindow), String(row.maxTokens)]
    })
    if (rows.length === 0) {
      yield* Output.errorLine(
        pool === undefined
          ? `The kernel at ${config.baseUrl} serves no models; configure one in its config.yaml.`
          : `The kernels at ${pool.join(", ")} serve no models; configure one in a config.yaml.`
      )
      return
    }
    yield* Output.line(table(["name", "backend", "context window", "max tokens"], rows, [false, false, true, true]))
  })).pipe(Command.withDescription("List the kernel's models, or every pooled kernel's (name, backend, context window, max tokens)"))

