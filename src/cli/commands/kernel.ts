/**
 * `effect-aios kernel serve [--port] [--script <file>]`: the ReferenceKernel as a process, for demos and for
 * plugin authors' tests, until SIGINT / SIGTERM.
 *
 * The script file is JSON: `{ "models"?: [{ "name", "backend"?, "behaviour"?: "echo" | "tools", "extra"? }],
 * "script"?: [Fault, …], "endpoints"?: { "/status": [Fault, …], … }, "latencyMs"?: number }` where a Fault is
 * one of ReferenceKernel's, tagged: `{ "_tag": "Status", "statusCode": 429 }`, `{ "_tag": "Hang" }`, ….
 * `script` faults go to the next `/query` requests, in order; `endpoints` to the others.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as ReferenceKernel from "../../testing/ReferenceKernel.js"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"

const exact = { exact: true } as const
const Headers = Schema.Record({ key: Schema.String, value: Schema.String })

/** ReferenceKernel's `Fault` union as a Schema, for script files. */
export const FaultSchema = Schema.Union(
  Schema.TaggedStruct("Status", {
    statusCode: Schema.Int,
    error: Schema.optionalWith(Schema.String, exact),
    errorType: Schema.optionalWith(Schema.String, exact),
    headers: Schema.optionalWith(Headers, exact)
  }),
  Schema.TaggedStruct("Http", {
    status: Schema.Int,
    body: Schema.optionalWith(Schema.String, exact),
    contentType: Schema.optionalWith(Schema.String, exact),
    headers: Schema.optionalWith(Headers, exact)
  }),
  Schema.TaggedStruct("Delay", { ms: Schema.NonNegativeInt }),
  Schema.TaggedStruct("Hang", {}),
  Schema.TaggedStruct("Malformed", { body: Schema.optionalWith(Schema.String, exact) }),
  Schema.TaggedStruct("Reset", {}),
  Schema.TaggedStruct("Reply", { text: Schema.String }),
  Schema.TaggedStruct("StreamError", {
    afterChunks: Schema.NonNegativeInt,
    statusCode: Schema.optionalWith(Schema.Int, exact),
    error: Schema.optionalWith(Schema.String, exact),
    errorType: Schema.optionalWith(Schema.String, exact),
    event: Schema.optionalWith(Schema.Boolean, exact)
  }),
  Schema.TaggedStruct("Stall", { afterChunks: Schema.NonNegativeInt }),
  Schema.TaggedStruct("Trickle", { intervalMs: Schema.Int.pipe(Schema.positive()) }),
  Schema.TaggedStruct("KeepAlive", {
    intervalMs: Schema.Int.pipe(Schema.positive()),
    afterChunks: Schema.optionalWith(Schema.NonNegativeInt, exact)
  }),
  Schema.TaggedStruct("OpenEnd", { usage: Schema.optionalWith(Schema.Boolean, exact) }),
  Schema.TaggedStruct("LargeBody", {
    bytes: Schema.NonNegativeInt,
    declareLength: Schema.optionalWith(Schema.Boolean, exact)
  })
)

const EndpointSchema = Schema.Literal("/query", "/core/llms/list", "/status", "/v1/chat/completions", "/v1/models")

/**
 * The `--script` file.
 *
 * @since 0.1.0
 */
export const ScriptFile = Schema.Struct({
  models: Schema.optionalWith(
    Schema.Array(Schema.Struct({
      name: Schema.NonEmptyTrimmedString,
      backend: Schema.optionalWith(Schema.String, exact),
      behaviour: Schema.optionalWith(Schema.Literal("echo", "tools"), exact),
      extra: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), exact)
    })),
    exact
  ),
  script: Schema.optionalWith(Schema.Array(FaultSchema), exact),
  endpoints: Schema.optionalWith(Schema.partial(Schema.Record({ key: EndpointSchema, value: Schema.Array(FaultSchema) })), exact),
  latencyMs: Schema.optionalWith(Schema.NonNegativeInt, exact)
})
export type ScriptFile = typeof ScriptFile.Type

/** Reads and checks a script file; the error names the file and the offending key. */
export const readScript = (path: string): Effect.Effect<ScriptFile, CliError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) => new CliError({ message: `${path}: cannot read it (${e.message})` }))
    )
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: () => new CliError({ message: `${path}: not valid JSON` })
    })
    return yield* Schema.decodeUnknown(ScriptFile, { onExcessProperty: "error" })(json).pipe(
      Effect.mapError((e) => {
        const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
        const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`
        return new CliError({ message: `${path}: not a kernel script${where}: ${issue?.message.split("\n")[0] ?? "invalid"}` })
      })
    )
  })

const portOption = Options.integer("port").pipe(
  Options.withAlias("p"),
  Options.withDescription("Port on 127.0.0.1 (0 picks a free one)"),
  Options.withDefault(8000)
)
const scriptOption = Options.text("script").pipe(
  Options.withDescription("JSON file with models and scripted faults (see the README)"),
  Options.optional
)

/**
 * @since 0.1.0
 */
export const serve = Command.make("serve", { port: portOption, script: scriptOption }, ({ port, script }) =>
  Effect.gen(function*() {
    const file = Option.isSome(script) ? yield* readScript(script.value) : undefined
    const kernel = yield* ReferenceKernel.make({
      port,
      ...(file?.models !== undefined ? { models: file.models } : {}),
      ...(file?.script !== undefined ? { script: file.script } : {}),
      ...(file?.latencyMs !== undefined ? { latencyMs: file.latencyMs } : {})
    }).pipe(
      Effect.mapError((e) =>
        new CliError({
          message: `Cannot listen on 127.0.0.1:${port} (${describeServeError(e)}). Pass --port 0 for a free port.`
        })
      )
    )
    for (const [endpoint, faults] of Object.entries(file?.endpoints ?? {})) {
      kernel.scriptEndpoint(endpoint as ReferenceKernel.Endpoint, ...(faults ?? []))
    }
    const names = (file?.models ?? ReferenceKernel.defaultModels).map((m) => m.name)
    yield* Output.line(`ReferenceKernel listening on ${kernel.url}`)
    yield* Output.line(`  models: ${names.join(", ")}`)
    yield* Output.line(`  AIOS: GET /status, GET /core/llms/list, POST /query   OpenAI-compatible: ${kernel.url}/v1`)
    yield* Output.line(`  try: effect-aios models --url ${kernel.url}`)
    yield* Output.line("Stop with Ctrl-C.")
    return yield* Effect.never
  }).pipe(Effect.scoped)).pipe(Command.withDescription("Run the ReferenceKernel (deterministic models, scriptable faults) until stopped"))

const describeServeError = (e: unknown): string => {
  let current: unknown = e
  for (let i = 0; i < 5 && typeof current === "object" && current !== null; i++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown; error?: unknown }).cause ?? (current as { error?: unknown }).error
  }
  return e instanceof Error ? e.message : String(e)
}

/**
 * @since 0.1.0
 */
export const kernel = Command.make("kernel").pipe(
  Command.withDescription("A reference kernel for demos and tests"),
  Command.withSubcommands([serve])
)
