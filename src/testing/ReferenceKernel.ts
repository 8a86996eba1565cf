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
import * as Batch from "./internal/batch.js"
import type { ChatMessage, NativeTool } from "./internal/models.js"
import { isTransportFault, realSleep, transportFault } from "./internal/faults.js"
import * as Models from "./internal/models.js"
import { envelope, statusText, validateQuery } from "./internal/aios.js"
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
  /**
   * The normal answer, its body sent one byte every `intervalMs` (real time): a client's idle timeout never
   * fires, only a deadline on the whole call does.
   */
  | { readonly _tag: "Trickle"; readonly intervalMs: number }
  /**
   * HTTP 200, then only keep-alive every `intervalMs` (real time), forever: SSE comments (`: keep-alive`) after
   * `afterChunks` pieces of a streamed `/v1` answer (default 0), elsewhere a space (JSON allows leading whitespace).
   */
  | { readonly _tag: "KeepAlive"; readonly intervalMs: number; readonly afterChunks?: number }
  /**
   * A streamed `/v1` answer that sends the whole reply, its final `finish_reason` chunk and its usage chunk
   * (unless `usage: false`), then stays open without `[DONE]`. Elsewhere the normal answer.
   */
  | { readonly _tag: "OpenEnd"; readonly usage?: boolean }
  /**
   * HTTP 200 with a body of `bytes` bytes, made as it is sent (the server holds none of it): on `/query` the
   * envelope of one long reply, on a streamed `/v1` answer content events, elsewhere a JSON object with one long
   * string. `declareLength` sends its `content-length` (a streamed `/v1` answer never does); `onSent` is told
   * the bytes written so far, so a test can see a client stop reading.
   */
  | {
    readonly _tag: "LargeBody"
    readonly bytes: number
    readonly declareLength?: boolean
    readonly onSent?: (bytes: number) => void
  }

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
   * `/query` batches like AIOS's scheduler: every `batchIntervalMs` (real time) it takes the queries waiting
   * and answers them one after another, each taking `latencyMs`. Default: each query at once, concurrently.
   */
  readonly batchIntervalMs?: number
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
    const server = yield* NodeHttpServer.make(() => nodeServer, { port: options.port ?? 0, host: "127.0.0.1" })
    // Node's close() waits for open requests; a scripted hang must not keep the server alive. (Added after the
    // server, so it runs before the server's own close.)
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0

    const batched: Batch.Batched = options.batchIntervalMs !== undefined ? yield* Batch.make(options.batchIntervalMs) : (work) => work
    const nextFault = (endpoint: Endpoint): Fault | undefined => queues.get(endpoint)?.shift()

    const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })

    /** The answer `body`, or its body trickled when the fault says so. */
    const answer = (body: unknown, fault: Fault | undefined) =>
      fault?._tag === "Trickle"
        ? HttpServerResponse.stream(ReferenceOpenAi.trickle(JSON.stringify(body), fault.intervalMs), { contentType: "application/json" })
        : json(body)

    /** Applies a fault; `undefined` means: answer normally (`Trickle`: through `answer`). */
    const applyFault = (
      request: HttpServerRequest.HttpServerRequest,
      fault: Fault | undefined,
      model: string,
      largeHead = "{\"filler\":\""
    ): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> => {
      if (fault === undefined) return Effect.succeed(undefined)
      if (isTransportFault(fault)) return transportFault(request, fault)
      switch (fault._tag) {
        case "Trickle":
        case "OpenEnd":
          return Effect.succeed(undefined)
        case "KeepAlive":
          return Effect.succeed(HttpServerResponse.stream(ReferenceOpenAi.keepAlive(" ", fault.intervalMs), { contentType: "application/json" }))
        case "LargeBody":
          return Effect.succeed(ReferenceOpenAi.largeJson(fault, largeHead, largeHead.startsWith("{\"response\"") ? "\"}}" : "\"}"))
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
        const fault = nextFault("/query")
        const faulted = yield* applyFault(request, fault, modelName, "{\"response\":{\"response_message\":\"")
        if (faulted !== undefined) return faulted
        yield* batched(latencyMs > 0 ? realSleep(latencyMs) : Effect.void)
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
        // The real kernel loses any text reply when native tools were sent. Reasoning arrives in the text, as
        // a `<think>` block, the way reasoning models served through plain chat completions write it.
        const lost = valid.tools.length > 0 && reply.toolCalls.length === 0
        const text = reply.reasoning ? `<think>${reply.reasoning}</think>${reply.text ?? ""}` : reply.text
        return answer(
          envelope({
            response_message: lost ? null : text,
            tool_calls: lost ? [] : reply.toolCalls.length > 0 ? reply.toolCalls : null
          }),
          fault
        )
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
        const fault = nextFault("/status")
        const faulted = yield* applyFault(request, fault, "")
        return faulted ?? answer({ status: "ok", message: "All core components are active." }, fault)
      }
      if (path === "/core/status" && request.method === "GET") {
        return json({ llms: models.length > 0 ? "active" : "inactive", storage: "active", memory: "active", tool: "active" })
      }
      if (path === "/core/llms/list" && request.method === "GET") {
        const fault = nextFault("/core/llms/list")
        const faulted = yield* applyFault(request, fault, "")
        if (faulted !== undefined) return faulted
        return models.length === 0
          ? answer({ status: "warning", message: "LLM core not initialized", llms: [] }, fault)
          : answer({
            status: "success",
            llms: models.map((m) => ({ name: m.name, backend: m.backend ?? "reference", ...m.extra }))
          }, fault)
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
