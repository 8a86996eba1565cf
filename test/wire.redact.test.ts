/**
 * Secrets in URLs and in a server's own words (issue 17): the userinfo and secret query values of a configured
 * URL, the API keys, and the values `/core/llms/list` revealed never reach a message, an error, an event or a
 * log. Canaries are planted where a careless client would leak them.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import * as AiosBackend from "../src/AiosBackend.js"
import * as AiosConfig from "../src/AiosConfig.js"
import * as Backend from "../src/Backend.js"
import * as BackendError from "../src/BackendError.js"
import * as Redact from "../src/internal/redact.js"
import * as ModelCatalogModule from "../src/ModelCatalog.js"
import { ModelCatalog } from "../src/ModelCatalog.js"
import * as OpenAiBackend from "../src/OpenAiBackend.js"
import * as ReferenceKernel from "../src/testing/ReferenceKernel.js"
import { backendStack, capturingLogs as capturing, deadUrl } from "./util.js"

const PASSWORD = "pw-CANARY-7f3a91"
const USER = "user-CANARY-2b8e"
const QUERY_KEY = "qk-CANARY-55d0c1"
const API_KEY = "sk-CANARY-apikey-0c4f9e2d"
const CONFIG_KEY = "sk-CANARY-config-9a1b3c5d"
const HOSTNAME = "http://internal-CANARY-host:11434"
const canaries = [PASSWORD, USER, QUERY_KEY, API_KEY, CONFIG_KEY, "internal-CANARY-host"]

/** Puts userinfo and a secret query value into a loopback URL. */
const withCredentials = (url: string, query = false) =>
  url.replace("http://", `http://${USER}:${PASSWORD}@`) + (query ? `?api_key=${QUERY_KEY}&mode=x` : "")

/** Everything about an error that could be printed. */
const printed = (error: unknown) =>
  [String(error), (error as Error).message, JSON.stringify(error), JSON.stringify((error as { url?: unknown }).url)].join("\n")

const expectNoCanary = (text: string) => {
  for (const canary of canaries) expect(text).not.toContain(canary)
}

/** Runs `effect` to an `Either`, capturing every log line. */
const capturingLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) => capturing(Effect.either(effect))

describe("Redact.url", () => {
  const table: ReadonlyArray<readonly [string, string]> = [
    ["http://localhost:8000", "http://localhost:8000"],
    ["http://user:secret@host:8000/v1", "http://[redacted]@host:8000/v1"],
    ["https://token@api.example.com/v1", "https://[redacted]@api.example.com/v1"],
    ["http://a:b@c@host/x", "http://[redacted]@host/x"],
    ["http://host/v1?api_key=k1&api-version=2024", "http://host/v1?api_key=[redacted]&api-version=2024"],
    ["http://host/v1?token=t&sig=s#access_token=a", "http://host/v1?token=[redacted]&sig=[redacted]#access_token=[redacted]"],
    ["http://host/v1?model=x", "http://host/v1?model=x"]
  ]
  for (const [raw, shown] of table) {
    it(`${raw} → ${shown}`, () => {
      expect(Redact.url(raw)).toBe(shown)
      expect(Redact.url(shown)).toBe(shown)
    })
  }

  const secret = fc.stringMatching(/^[A-Za-z0-9_~-]{4,24}$/)
  it.prop("no userinfo or secret query value survives, and redacting twice changes nothing", [
    secret,
    secret,
    fc.constantFrom("api_key", "key", "token", "access_token", "password", "sig"),
    secret,
    fc.constantFrom("127.0.0.1:8000", "api.example.com", "[::1]:9"),
    fc.constantFrom("", "/v1", "/a/b")
  ], ([user, password, name, value, host, path]) => {
    const raw = `http://${user}:${password}@${host}${path}?${name}=${value}`
    const shown = Redact.url(raw)
    expect(shown).toBe(`http://[redacted]@${host}${path}?${name}=[redacted]`)
    expect(Redact.url(shown)).toBe(shown)
  })

  it("the secrets of a URL, raw and percent-decoded", () => {
    expect(Redact.ofUrl("http://us%40r:p%3Ass@h/?token=a%2Bb&x=1")).toEqual(
      expect.arrayContaining(["us%40r", "us@r", "p%3Ass", "p:ss", "a%2Bb", "a+b"])
    )
  })
})

describe("Redact.quote", () => {
  const known = Redact.add(Redact.empty, [CONFIG_KEY, API_KEY, "tiny"])

  it("replaces known secrets and credential-shaped fragments; keeps the rest", () => {
    expect(Redact.quote(`Invalid key ${CONFIG_KEY} for model 'm'.`, known)).toBe("Invalid key [redacted] for model 'm'.")
    expect(Redact.quote(`api_key: sk-unknown-12345 in config.yaml`, Redact.empty)).toBe("api_key: [redacted] in config.yaml")
    expect(Redact.quote(`{"token": "abcd-efgh"}`, Redact.empty)).toBe(`{"token": "[redacted]"}`)
    expect(Redact.quote(`proxy http://bob:hunter22@10.0.0.1:3128 refused`, Redact.empty)).toBe(
      "proxy http://[redacted]@10.0.0.1:3128 refused"
    )
    expect(Redact.quote(`GET /v1?x=1&api_key=zzzz9 failed`, Redact.empty)).toBe("GET /v1?x=1&api_key=[redacted] failed")
    // Values under 4 characters are not hidden (they would blank out ordinary words); token counts are not tokens.
    expect(Redact.quote("the tiny model used 8192 tokens: 9000 max_tokens: 4096", known)).toBe(
      "the [redacted] model used 8192 tokens: 9000 max_tokens: 4096"
    )
  })

  it("a secret cut by the length limit is hidden whole, not in part", () => {
    const text = `${"x".repeat(290)}${CONFIG_KEY}${"y".repeat(50)}`
    const quoted = Redact.quote(text, known)
    expect(quoted).toBe(`${"x".repeat(290)}[redacted]…`)
    expect(quoted).not.toContain(CONFIG_KEY.slice(0, 6))
  })

  const alphabet = fc.constantFrom(..."abcdefgh .,:;=/@?&-_\"'{}".split(""))
  it.prop(
    "no known secret, whole or cut, survives any text and any limit",
    [
      fc.array(fc.stringMatching(/^[A-Z0-9]{4,40}$/), { minLength: 1, maxLength: 6 }),
      fc.array(fc.oneof(fc.string({ unit: alphabet, maxLength: 200 }), fc.nat({ max: 5 })), { maxLength: 12 }),
      fc.integer({ min: 1, max: 400 })
    ],
    ([secrets, parts, limit]) => {
      const set = Redact.add(Redact.empty, secrets)
      const text = parts.map((p) => (typeof p === "number" ? secrets[p % secrets.length]! : p)).join("")
      const quoted = Redact.quote(text, set, limit)
      const body = quoted.endsWith("…") ? quoted.slice(0, -1) : quoted
      for (const s of set.values) {
        expect(body).not.toContain(s)
        // Not even the start of one at the cut.
        for (let n = 4; n < s.length; n++) expect(body.endsWith(s.slice(0, n))).toBe(false)
      }
      expect(body.replaceAll("[redacted]", "").length).toBeLessThanOrEqual(limit)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("reads a bounded prefix of a huge or hostile text", () => {
    const many = Redact.add(Redact.empty, Array.from({ length: 2_000 }, (_, i) => `SECRET-${i}-${"z".repeat(i % 50)}`))
    expect(many.values.size).toBe(512)
    for (const hostile of ["a.".repeat(4_000_000), "key=".repeat(2_000_000), "http://".repeat(1_000_000), "x".repeat(8_000_000)]) {
      const quoted = Redact.quote(hostile, many)
      expect(quoted.length).toBeLessThanOrEqual(302)
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Over HTTP
// ---------------------------------------------------------------------------------------------------------------

const planted: ReadonlyArray<ReferenceKernel.ModelSpec> = [
  { name: "echo", backend: "openai", extra: { api_key: CONFIG_KEY, hostname: HOSTNAME, proxy: "none" } },
  { name: "tool-user", backend: "ollama", extra: { nested: { password: `${CONFIG_KEY}-2` } } }
]

/** An AIOS (or /v1) backend and catalog at `url`, which may hold credentials. */
const backendStackAt = (url: string, backend: "aios" | "openai-compatible" = "aios") =>
  ModelCatalogModule.layer.pipe(
    Layer.provideMerge(backend === "aios" ? AiosBackend.layer : OpenAiBackend.layer),
    Layer.provideMerge(Layer.merge(AiosConfig.layer({ baseUrl: url, backend, apiKeys: [API_KEY] }), NodeHttpClient.layerUndici)),
    Layer.orDie
  )

describe("a baseUrl with userinfo and a secret query value", () => {
  it.live("AIOS: an unreachable kernel's message, error and logs name it without the credentials", () =>
    Effect.gen(function*() {
      const url = withCredentials(yield* Effect.promise(deadUrl), true)
      const { lines, result } = yield* capturingLogs(
        Effect.gen(function*() {
          const catalog = yield* ModelCatalog
          return yield* catalog.require("echo")
        }).pipe(Effect.provide(backendStackAt(url)))
      )
      expect(Either.isLeft(result)).toBe(true)
      const error = Either.isLeft(result) ? result.left : undefined
      expect(error).toMatchObject({ _tag: "BackendUnreachable", detail: "ECONNREFUSED" })
      expect(error?.message).toMatch(/^Cannot reach the AIOS kernel at http:\/\/\[redacted\]@127\.0\.0\.1:\d+\?api_key=\[redacted\]&mode=x: /)
      expectNoCanary(printed(error) + lines.join("\n"))
    }))

  it.live("AIOS: a kernel that answers; its URL in Backend.url, timeouts and refusals is redacted", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const url = withCredentials(kernel.url)
      yield* Effect.gen(function*() {
        const backend = yield* Backend.Backend
        expect(backend.url).toBe(kernel.url.replace("http://", "http://[redacted]@"))
        const ok = yield* Backend.call({ model: "echo", messages: [{ role: "user", content: "hi" }] })
        expect(ok.text).toBe("hi")
        kernel.script({ _tag: "Hang" }, { _tag: "Status", statusCode: 503 })
        const timeout = yield* Effect.flip(Backend.call({ model: "echo", messages: [{ role: "user", content: "x" }], timeoutMs: 50 }))
        expect(timeout._tag).toBe("BackendTimeout")
        const refused = yield* Effect.flip(Backend.call({ model: "echo", messages: [{ role: "user", content: "x" }] }))
        expect(refused._tag).toBe("BackendRejected")
        expectNoCanary([timeout, refused].map(printed).join("\n"))
      }).pipe(Effect.provide(AiosBackend.layer), Effect.provide(Layer.merge(AiosConfig.layer({ baseUrl: url }), NodeHttpClient.layerUndici)))
    }).pipe(Effect.provide(ReferenceKernel.layer()), Effect.orDie))

  it.live("/v1: errors, the stream's failure and logs never print the credentials", () =>
    Effect.gen(function*() {
      const url = withCredentials(`${yield* Effect.promise(deadUrl)}/v1`, true)
      const { lines, result } = yield* capturingLogs(
        Effect.flatMap(Backend.Backend, (b) => Stream.runDrain(b.stream({ model: "m", messages: [{ role: "user", content: "x" }] }))).pipe(
          Effect.provide(backendStackAt(url, "openai-compatible"))
        )
      )
      const error = Either.isLeft(result) ? result.left : undefined
      expect(error?._tag).toBe("BackendUnreachable")
      expect(error?.message).toContain("the OpenAI-compatible endpoint at http://[redacted]@127.0.0.1:")
      expectNoCanary(printed(error) + lines.join("\n"))
    }))
})

describe("the kernel's own words", () => {
  it.effect("AIOS: an in-body 401 and a 500 body that echo config.yaml lose every value /core/llms/list revealed", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      const catalog = yield* ModelCatalog
      const { lines, result } = yield* capturingLogs(Effect.gen(function*() {
        yield* catalog.require("echo")
        kernel.script(
          {
            _tag: "Status",
            statusCode: 401,
            error: `Authentication Error with model 'echo': api_key ${CONFIG_KEY} from hostname ${HOSTNAME} was refused.`
          },
          { _tag: "Http", status: 500, body: JSON.stringify({ detail: `provider failed; config: ${CONFIG_KEY}-2 and ${CONFIG_KEY}` }) },
          { _tag: "Http", status: 500, body: `${"e".repeat(295)}${CONFIG_KEY} (cut here)` },
          { _tag: "Status", statusCode: 503, error: "Cannot connect to internal-CANARY-host:11434 (none answered)" }
        )
        const errors: Array<BackendError.BackendError> = []
        for (let i = 0; i < 4; i++) errors.push(yield* Effect.flip(Backend.call({ model: "echo", messages: [{ role: "user", content: "x" }] })))
        return errors
      }))
      const errors = Either.getOrThrow(result)
      expect(errors.map((e) => e._tag)).toEqual(["BackendRejected", "BackendRejected", "BackendRejected", "BackendRejected"])
      // The host of a revealed URL is hidden too; a placeholder value ("none") is not a secret.
      expect(errors[3]!.message).toContain("Cannot connect to [redacted] (none answered)")
      expect(errors[0]).toMatchObject({ status: 401, kind: "auth", inBody: true })
      expect(errors[0]!.message).toContain("api_key [redacted] from hostname [redacted] was refused. Check the API key")
      expect(errors[1]!.message).toContain("config: [redacted] and [redacted]")
      expect(errors[2]!.message).toContain(`${"e".repeat(295)}[redacted]…`)
      expectNoCanary(errors.map(printed).join("\n") + lines.join("\n"))
    }).pipe(Effect.provide(backendStack({ models: planted }, { requestTimeoutMs: 5_000 }))))

  it.effect("/v1: a 500 body and an in-stream error that echo the API key lose it", () =>
    Effect.gen(function*() {
      const kernel = yield* ReferenceKernel.ReferenceKernel
      kernel.scriptEndpoint(
        "/v1/chat/completions",
        { _tag: "Http", status: 500, body: `upstream said: bad key ${API_KEY}, url http://u:${PASSWORD}@x` },
        { _tag: "StreamError", afterChunks: 1, statusCode: 400, error: `{"api_key": "${API_KEY}"} is not valid` }
      )
      const request = { model: "echo", messages: [{ role: "user" as const, content: "hello there" }] }
      const first = yield* Effect.flip(Backend.call(request))
      const second = yield* Effect.flip(Backend.call(request))
      expect(first).toMatchObject({ _tag: "BackendRejected", status: 500 })
      expect(first.message).toContain("bad key [redacted], url http://[redacted]@x")
      expect(second).toMatchObject({ _tag: "BackendRejected", status: 400, inBody: true })
      expectNoCanary([first, second].map(printed).join("\n"))
    }).pipe(Effect.provide(backendStack({}, { requestTimeoutMs: 5_000, backend: "openai-compatible", apiKeys: [API_KEY] }))))
})
