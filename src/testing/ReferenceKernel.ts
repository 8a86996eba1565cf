/**
 * An AIOS-wire-compatible HTTP server for tests, benchmarks, demos and plugin authors: the real kernel's
 * endpoints, shapes and quirks (failures inside HTTP 200 bodies, 422 for bad bodies, a nameless `llms` entry
 * hangs), deterministic models, and scriptable faults. It records what it receives and counts requests.
 * It also speaks OpenAI's `/v1` (`GET /v1/models`, `POST /v1/chat/completions` with server-sent-event
 * streaming, native tool-call deltas, usage, bearer keys counted per key), so both backends have a real server.
 *
 * @since 0.1.0
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { ChatMessage, NativeTool } from "./internal/models.js"
import { isTransportFault, realSleep, transportFault } from "./internal/faults.js"
import * as Models from "./internal/models.js"
import * as ReferenceOpenAi from "./internal/openAi.js"

/** A model's behaviour: a built-in, or a function of the conversation. */
export type Behaviour =
  | "echo"
  | "tools"
  | ((messages: ReadonlyArray<ChatMessage>, tools: ReadonlyArray<NativeTool>) => Models.ModelReply)

/** A model the reference kernel serves. `extra` keys are echoed by `/core/llms/list` (plant secrets here). */
export interface ModelSpec {
  readonly name: string
  readonly backend?: string
  readonly behaviour?: Behaviour
  readonly extra?: Readonly<Record<string, unknown>>
}

/**
 * A scripted fault, consumed by the next request to its endpoint.
 *
 * @since 0.1.0
 */
export type Fault =
  /**
   * An in-body failure: HTTP 200 with `response.status_code` (the real kernel's way). On `/v1` it is that HTTP
   * status with an OpenAI error body (`error.message`, `error.type`/`error.code` = `errorType` or OpenAI's
   * default for the status) and `headers` (e.g. `retry-after`).
   */
  | {
    readonly _tag: "Status"
    readonly statusCode: number
    readonly error?: string
    readonly errorType?: string
    readonly headers?: Readonly<Record<string, string>>
  }
  /** A transport-level status, e.g. 422 or 500, with an optional raw body and headers. */
  | {
    readonly _tag: "Http"
    readonly status: number
    readonly body?: string
    readonly contentType?: string
    readonly headers?: Readonly<Record<string, string>>
  }
  /** Waits before answering normally (slow first byte). */
  | { readonly _tag: "Delay"; readonly ms: number }
  /** Never answers. */
  | { readonly _tag: "Hang" }
  /** Answers 200 with this body (default: not JSON). */
  | { readonly _tag: "Malformed"; readonly body?: string }
  /** Destroys the connection without answering. */
  | { readonly _tag: "Reset" }
  /** Answers with this text instead of the model's. */
  | { readonly _tag: "Reply"; readonly text: string }
  /**
   * A streamed `/v1` answer that, after `afterChunks` pieces, sends an error event (OpenAI's
   * `data: {"error": …}`, or with `event: error` when `event`) and ends. Elsewhere it is that `Status`
   * (default 429).
   */
  | {
    readonly _tag: "StreamError"
    readonly afterChunks: number
    readonly statusCode?: number
    readonly error?: string
    readonly errorType?: string
    readonly event?: boolean
  }
  /** A streamed `/v1` answer that goes silent after `afterChunks` pieces. Elsewhere it is `Hang`. */
  | { readonly _tag: "Stall"; readonly afterChunks: number }

/** The endpoints that take scripted faults. */
export type Endpoint = "/query" | "/core/llms/list" | "/status" | "/v1/chat/completions" | "/v1/models"

/** What the kernel received. */
export interface Recorded {
  readonly method: string
  readonly path: string
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
}

/** Options for a reference kernel. */
export interface Options {
  /** Port to listen on; 0 (default) picks a free one. Always binds 127.0.0.1. */
  readonly port?: number
  /** Models served; default `echo` and `tool-user`. */
  readonly models?: ReadonlyArray<ModelSpec>
  /** Faults for the first `/query` requests, in order. */
  readonly script?: ReadonlyArray<Fault>
  /** Added latency for every `/query` and `/v1/chat/completions`, in milliseconds (real time). */
  readonly latencyMs?: number
  /**
   * `/v1` streaming: characters per streamed piece (default 4); a list is used cyclically, so a test can choose
   * every split point. Splits fall on UTF-16 code units, so a surrogate pair may be cut, as real streams do.
   */
  readonly streamChunkChars?: number | ReadonlyArray<number>
  /** `/v1` streaming: real-time pause between pieces (default 0). */
  readonly streamDelayMs?: number
  /** `/v1`: the only bearer keys accepted; any other (or none) gets 401. Default: no check. */
  readonly apiKeys?: ReadonlyArray<string>
  /** `/v1`: end streams with a usage chunk when `stream_options.include_usage` asks (default true). */
  readonly streamUsage?: boolean
  /** `/v1`: stream when asked (default true); false answers JSON even to `stream: true`. */
  readonly streaming?: boolean
  /** `/v1`: accept native `tools` (default true); false refuses them with 400. */
  readonly nativeTools?: boolean
}

/**
 * A running reference kernel.
 *
 * @since 0.1.0
 */
export interface Service {
  readonly url: string
  readonly port: number
  /** Queues faults for the next `/query` requests. */
  readonly script: (...faults: ReadonlyArray<Fault>) => void
  /** Queues faults for the next requests to `endpoint`. */
  readonly scriptEndpoint: (endpoint: Endpoint, ...faults: ReadonlyArray<Fault>) => void
  /** Queues faults for the next `/v1` requests bearing `key` (taken before the endpoint's own queue). */
  readonly scriptKey: (key: string, ...faults: ReadonlyArray<Fault>) => void
  /** How many `/v1` requests bore `key` as their bearer token (`""`: none). */
  readonly countByKey: (key: string) => number
  /** Changes the `/v1` streaming split (see `Options.streamChunkChars`). */
  readonly setStreamChunkChars: (chars: number | ReadonlyArray<number>) => void
  /** Requests received, optionally only those to `path`. */
  readonly requests: (path?: string) => ReadonlyArray<Recorded>
  /** How many requests `path` received. */
  readonly count: (path: string) => number
  /** The most `/query` and `/v1/chat/completions` requests that were in progress at once. */
  readonly maxConcurrentQueries: () => number
  /** How many `/query` and `/v1/chat/completions` requests are in progress now (a stream counts until it ends). */
  readonly openQueries: () => number
  readonly setModels: (models: ReadonlyArray<ModelSpec>) => void
  readonly setLatency: (ms: number) => void
  /** Forgets recorded requests, counts and queued faults. */
  readonly reset: () => void
}

/**
 * @since 0.1.0
 */
export class ReferenceKernel extends Context.Tag("effect-aios/ReferenceKernel")<ReferenceKernel, Service>() {}

/** The default models: `echo` and `tool-user`. */
export const defaultModels: ReadonlyArray<ModelSpec> = [
  { name: "echo", backend: "reference", behaviour: "echo" },
  { name: "tool-user", backend: "reference", behaviour: "tools" }
]

/** The real kernel's in-body error texts. */
const statusText = (statusCode: number, model: string): string => {
  switch (statusCode) {
    case 429:
      return `Rate Limit Exceeded for model '${model}'. Please try again later.`
    case 401:
      return `Authentication Error with model '${model}': invalid x-api-key`
    case 400:
      return `Bad Request Error with model '${model}': invalid request`
    case 404:
      return `Model Not Found: '${model}' does not exist at the provider`
    case 408:
      return `Timeout Error with model '${model}': request timed out`
    case 502:
      return `API Error with model '${model}': bad gateway`
    case 503:
      return `Service Unavailable: cannot connect to provider for model '${model}'`
    default:
      return `Internal error with model '${model}'`
  }
}

const envelope = (response: Record<string, unknown>) => ({
  response: {
    response_class: "llm",
    response_message: null,
    tool_calls: null,
    finished: true,
    error: null,
    status_code: 200,
    ...response
  },
  start_times: [],
  end_times: [],
  waiting_times: [],
  turnaround_times: []
})

type Detail = { type: string; loc: Array<string | number>; msg: string }

/** FastAPI-style validation of the `/query` body: the details of a 422, or the parts the kernel uses. */
const validateQuery = (body: unknown): Array<Detail> | {
  messages: Array<ChatMessage>
  llms: Array<Record<string, unknown>>
  tools: Array<NativeTool>
} => {
  const details: Array<Detail> = []
  const missing = (loc: Array<string | number>) => details.push({ type: "missing", loc: ["body", ...loc], msg: "Field required" })
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return [{ type: "model_attributes_type", loc: ["body"], msg: "Input should be a valid dictionary or object" }]
  }
  const b = body as Record<string, unknown>
  if (typeof b.agent_name !== "string") missing(["agent_name"])
  if (typeof b.query_type !== "string") missing(["query_type"])
  const data = b.query_data
  if (data === null || typeof data !== "object") {
    missing(["query_data"])
    return details
  }
  const d = data as Record<string, unknown>
  const actions = ["chat", "chat_with_json_output", "chat_with_tool_call_output", "call_tool", "operate_file"]
  if (d.action_type !== undefined && !actions.includes(String(d.action_type))) {
    details.push({
      type: "literal_error",
      loc: ["body", "query_data", "action_type"],
      msg: `Input should be ${actions.map((a) => `'${a}'`).join(", ")}`
    })
  }
  if (d.message_return_type !== undefined && d.message_return_type !== "text" && d.message_return_type !== "json") {
    details.push({ type: "literal_error", loc: ["body", "query_data", "message_return_type"], msg: "Input should be 'text' or 'json'" })
  }
  if (!Array.isArray(d.messages)) missing(["query_data", "messages"])
  if (d.llms !== undefined && d.llms !== null && !Array.isArray(d.llms)) {
    details.push({ type: "list_type", loc: ["body", "query_data", "llms"], msg: "Input should be a valid list" })
  }
  if (details.length > 0) return details
  return {
    messages: d.messages as Array<ChatMessage>,
    llms: (d.llms ?? []) as Array<Record<string, unknown>>,
    tools: (Array.isArray(d.tools) ? d.tools : []) as Array<NativeTool>
  }
}

/**
 * Starts a reference kernel on 127.0.0.1 for the lifetime of the scope.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Service, HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    let models: ReadonlyArray<ModelSpec> = options.models ?? defaultModels
    let latencyMs = options.latencyMs ?? 0
    const queues = new Map<Endpoint, Array<Fault>>([["/query", [...(options.script ?? [])]]])
    let recorded: Array<Recorded> = []
    const counts = new Map<string, number>()
    let inFlight = 0
    let maxInFlight = 0
    let chunkChars: number | ReadonlyArray<number> = options.streamChunkChars ?? 4
    const keyQueues = new Map<string, Array<Fault>>()
    const keyCounts = new Map<string, number>()
    const enter = () => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
    }
    const leave = () => {
      inFlight--
    }

    const nodeServer = Http.createServer()
    // Node's close() waits for open requests; a scripted hang must not keep the server alive.
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
    const server = yield* NodeHttpServer.make(() => nodeServer, { port: options.port ?? 0, host: "127.0.0.1" })
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0

    const nextFault = (endpoint: Endpoint): Fault | undefined => queues.get(endpoint)?.shift()

    const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })

    /** Applies a fault; `undefined` means: answer normally. */
    const applyFault = (
      request: HttpServerRequest.HttpServerRequest,
      fault: Fault | undefined,
      model: string
    ): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> => {
      if (fault === undefined) return Effect.succeed(undefined)
      if (isTransportFault(fault)) return transportFault(request, fault)
      switch (fault._tag) {
        case "Status":
          return Effect.succeed(json(envelope({ status_code: fault.statusCode, error: fault.error ?? statusText(fault.statusCode, model) })))
        case "Malformed":
          return Effect.succeed(HttpServerResponse.text(fault.body ?? "{\"response\": {\"status_code\": 200,", { contentType: "application/json" }))
        case "Reply":
          return Effect.succeed(json(envelope({ response_message: fault.text })))
        case "StreamError": {
          const statusCode = fault.statusCode ?? 429
          return Effect.succeed(json(envelope({ status_code: statusCode, error: fault.error ?? statusText(statusCode, model) })))
        }
        case "Stall":
          return Effect.never
      }
    }

    const openAiHost: ReferenceOpenAi.Host = {
      models: () => models,
      settings: () => ({
        chunkChars,
        delayMs: options.streamDelayMs ?? 0,
        apiKeys: options.apiKeys,
        streamUsage: options.streamUsage ?? true,
        streaming: options.streaming ?? true,
        nativeTools: options.nativeTools ?? true,
        latencyMs
      }),
      nextFault: (endpoint, key) => (key === undefined ? undefined : keyQueues.get(key)?.shift()) ?? nextFault(endpoint),
      countKey: (key) => {
        keyCounts.set(key ?? "", (keyCounts.get(key ?? "") ?? 0) + 1)
      },
      enter,
      leave
    }

    const answerQuery = (request: HttpServerRequest.HttpServerRequest, body: unknown) =>
      Effect.gen(function*() {
        const valid = validateQuery(body)
        if (Array.isArray(valid)) return json({ detail: valid }, 422)
        const named = valid.llms.map((l) => l?.name)
        // The real kernel never answers a request whose llms entry has no name.
        if (named.some((n) => typeof n !== "string")) return yield* Effect.never
        const configured = named.length === 0 ? models[0] : models.find((m) => named.includes(m.name))
        const modelName = (named[0] as string | undefined) ?? configured?.name ?? "unknown"
        const faulted = yield* applyFault(request, nextFault("/query"), modelName)
        if (faulted !== undefined) return faulted
        if (latencyMs > 0) yield* realSleep(latencyMs)
        if (configured === undefined) {
          return json(envelope({ status_code: 500, error: "Selected LLMs are not all available. Please check the available LLMs." }))
        }
        if (valid.messages.length === 0) {
          return json(envelope({ status_code: 400, error: `Bad Request Error with model '${modelName}': messages must not be empty` }))
        }
        const behaviour = configured.behaviour ?? "echo"
        const reply = behaviour === "echo"
          ? Models.echo(valid.messages)
          : behaviour === "tools"
          ? Models.toolUser(valid.messages, valid.tools)
          : behaviour(valid.messages, valid.tools)
        // The real kernel loses any text reply when native tools were sent.
        const lost = valid.tools.length > 0 && reply.toolCalls.length === 0
        return json(envelope({
          response_message: lost ? null : reply.text,
          tool_calls: lost ? [] : reply.toolCalls.length > 0 ? reply.toolCalls : null
        }))
      })

    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = new URL(request.url, "http://localhost").pathname
      const body: unknown = request.method === "POST"
        ? yield* request.text.pipe(
          Effect.map((t) => {
            try {
              return JSON.parse(t) as unknown
            } catch {
              return { __invalidJson: t }
            }
          }),
          Effect.orElseSucceed(() => undefined)
        )
        : undefined
      recorded.push({ method: request.method, path, headers: request.headers, body })
      counts.set(path, (counts.get(path) ?? 0) + 1)

      if (path === "/status" && request.method === "GET") {
        const faulted = yield* applyFault(request, nextFault("/status"), "")
        return faulted ?? json({ status: "ok", message: "All core components are active." })
      }
      if (path === "/core/status" && request.method === "GET") {
        return json({ llms: models.length > 0 ? "active" : "inactive", storage: "active", memory: "active", tool: "active" })
      }
      if (path === "/core/llms/list" && request.method === "GET") {
        const faulted = yield* applyFault(request, nextFault("/core/llms/list"), "")
        if (faulted !== undefined) return faulted
        return models.length === 0
          ? json({ status: "warning", message: "LLM core not initialized", llms: [] })
          : json({
            status: "success",
            llms: models.map((m) => ({ name: m.name, backend: m.backend ?? "reference", ...m.extra }))
          })
      }
      if (path === "/query" && request.method === "POST") {
        if (body !== null && typeof body === "object" && "__invalidJson" in body) {
          return json({ detail: [{ type: "json_invalid", loc: ["body", 0], msg: "JSON decode error" }] }, 422)
        }
        enter()
        return yield* Effect.ensuring(answerQuery(request, body), Effect.sync(leave))
      }
      if (path.startsWith("/v1/")) {
        // In-flight accounting is the handler's: a streamed answer stays in flight until its stream ends.
        const answered = yield* ReferenceOpenAi.handle(openAiHost, request, path, body)
        if (answered !== undefined) return answered
      }
      return json({ detail: "Not Found" }, 404)
    })

    // The platform runs apps uninterruptibly; a client that goes away must end a scripted hang.
    yield* server.serve(Effect.interruptible(app))

    return {
      url: `http://127.0.0.1:${port}`,
      port,
      script: (...faults) => {
        queues.get("/query")!.push(...faults)
      },
      scriptEndpoint: (endpoint, ...faults) => {
        const queue = queues.get(endpoint) ?? []
        queue.push(...faults)
        queues.set(endpoint, queue)
      },
      scriptKey: (key, ...faults) => {
        const queue = keyQueues.get(key) ?? []
        queue.push(...faults)
        keyQueues.set(key, queue)
      },
      countByKey: (key) => keyCounts.get(key) ?? 0,
      setStreamChunkChars: (chars) => {
        chunkChars = chars
      },
      requests: (path) => (path === undefined ? [...recorded] : recorded.filter((r) => r.path === path)),
      count: (path) => counts.get(path) ?? 0,
      maxConcurrentQueries: () => maxInFlight,
      openQueries: () => inFlight,
      setModels: (next) => {
        models = next
      },
      setLatency: (ms) => {
        latencyMs = ms
      },
      reset: () => {
        recorded = []
        counts.clear()
        queues.clear()
        queues.set("/query", [])
        keyQueues.clear()
        keyCounts.clear()
        chunkChars = options.streamChunkChars ?? 4
        maxInFlight = inFlight
      }
    } satisfies Service
  })

/**
 * The reference kernel as a scoped layer.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<ReferenceKernel, HttpServerError.ServeError> =>
  Layer.scoped(ReferenceKernel, make(options))

/** A running reference kernel for non-Effect code; `close` stops it and drops every connection. */
export interface Handle extends Service {
  readonly close: () => Promise<void>
}

/**
 * Starts a reference kernel from Promise code: `const k = await startReferenceKernel(); … await k.close()`.
 *
 * @since 0.1.0
 */
export const startReferenceKernel = async (options: Options = {}): Promise<Handle> => {
  const runtime = ManagedRuntime.make(layer(options))
  const service = await runtime.runPromise(ReferenceKernel)
  return { ...service, close: () => runtime.dispose() }
}
