/**
 * Keeping secrets out of everything effect-aios prints. Two tools: `url`, the one way a configured URL is shown
 * (userinfo and secret-looking query values replaced), and `quote`, the one way a server's own words are shown
 * (cut to a length, with every secret the client knows and every credential-shaped fragment replaced).
 */

/** What stands for a secret in anything printed. */
export const mark = "[redacted]"

/** Query-string and config-key names whose values are credentials. */
const secretName = /key|token|secret|pass(?:word|wd)?|auth|sig(?:nature)?|credential|session|cookie|bearer/i

const decode = (s: string): string => {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "))
  } catch {
    return s
  }
}

const isSecretName = (name: string): boolean => secretName.test(decode(name))

// Bounded quantifiers throughout: each pattern is linear in its input.
const userinfoAt = /^([A-Za-z][A-Za-z0-9+.-]{0,30}:\/\/)([^/?#\\]*)@/
const param = /([?&#;])([^=&#;?]{0,200})=([^&#;]*)/g

/**
 * A URL as it may be printed: `http://user:secret@host/v1?api_key=k` → `http://[redacted]@host/v1?api_key=[redacted]`.
 * Idempotent; text that is not a URL keeps its shape.
 */
export const url = (raw: string): string => {
  const noUser = raw.replace(userinfoAt, (_, scheme: string, info: string) => (info === "" ? `${scheme}@` : `${scheme}${mark}@`))
  const q = noUser.search(/[?#]/)
  if (q < 0) return noUser
  return noUser.slice(0, q) +
    noUser.slice(q).replace(param, (whole, sep: string, name: string, value: string) =>
      isSecretName(name) && value !== "" && value !== mark ? `${sep}${name}=${mark}` : whole
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Known secret values
// ---------------------------------------------------------------------------------------------------------------

/** Shorter values are not secrets worth hiding (and would blank out ordinary words). */
const minLength = 4
/** Longer values are not looked for (a PEM block, a whole document). */
const maxLength = 8_192
/** The newest values kept; a hostile list cannot make every quote slow. */
const maxValues = 512

/**
 * The secret values a client knows (its API keys, the URL's userinfo, the values a model list revealed), as
 * an immutable set.
 */
export interface Secrets {
  readonly values: ReadonlySet<string>
  /** The longest value, in UTF-16 code units. */
  readonly longest: number
}

export const empty: Secrets = { values: new Set(), longest: 0 }

/** Placeholders a config holds where a secret would be: hiding them would only blank out ordinary words. */
const placeholders: ReadonlySet<string> = new Set(["none", "null", "true", "false", "default", "empty", "dummy"])

/** `secrets` with `values` added (the newest `maxValues` kept); the same object when nothing is new. */
export const add = (secrets: Secrets, values: Iterable<string>): Secrets => {
  let next: Set<string> | undefined
  for (const value of values) {
    if (value.length < minLength || value.length > maxLength || value.trim().length < minLength) continue
    if (placeholders.has(value.trim().toLowerCase())) continue
    if ((next ?? secrets.values).has(value)) continue
    next ??= new Set(secrets.values)
    next.add(value)
  }
  if (next === undefined) return secrets
  const kept = next.size > maxValues ? [...next].slice(next.size - maxValues) : [...next]
  return { values: new Set(kept), longest: kept.reduce((n, v) => Math.max(n, v.length), 0) }
}

/** A value, and its percent-decoded form when that differs. */
const forms = (value: string): ReadonlyArray<string> => {
  const decoded = decode(value)
  return decoded === value ? [value] : [value, decoded]
}

/** The secrets in a URL: its userinfo (user name and password) and its secret-looking query values. */
export const ofUrl = (raw: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  const info = userinfoAt.exec(raw)?.[2]
  if (info !== undefined && info !== "" && info !== mark) {
    const colon = info.indexOf(":")
    out.push(info, ...(colon < 0 ? forms(info) : [...forms(info.slice(0, colon)), ...forms(info.slice(colon + 1))]))
  }
  const q = raw.search(/[?#]/)
  if (q >= 0) {
    for (const m of raw.slice(q).matchAll(param)) {
      if (isSecretName(m[2] ?? "") && (m[3] ?? "") !== "") out.push(...forms(m[3]!))
    }
  }
  return out
}

/** The host (with and without its port) of a value that is a URL, as written: an internal address is worth hiding too. */
const hostOf = (value: string): ReadonlyArray<string> => {
  const host = /^[A-Za-z][A-Za-z0-9+.-]{0,30}:\/\/(?:[^/?#\\]*@)?([^/?#\\@]+)/.exec(value)?.[1]
  if (host === undefined) return []
  const name = host.replace(/:\d*$/, "")
  return name === host ? [host] : [host, name]
}

/**
 * The string values inside a JSON value the server revealed beside what we keep (a `/core/llms/list` entry's
 * `api_key`, `hostname`, …), walked to a bounded depth and count; URLs among them give their userinfo too.
 */
export const collect = (value: unknown): ReadonlyArray<string> => {
  const out: Array<string> = []
  const walk = (v: unknown, depth: number): void => {
    if (out.length >= 64) return
    if (typeof v === "string") {
      out.push(v, ...ofUrl(v), ...hostOf(v))
    } else if (depth < 4 && v !== null && typeof v === "object") {
      for (const item of Array.isArray(v) ? v : Object.values(v)) walk(item, depth + 1)
    }
  }
  walk(value, 0)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Quoting a server's words
// ---------------------------------------------------------------------------------------------------------------

const isHigh = (code: number): boolean => code >= 0xd800 && code <= 0xdbff

/** A span of text to hide: [start, end). */
type Span = readonly [number, number]

// Credentials that need no list to be recognised: a URL's userinfo, a secret query value, `api_key: …` / `"token": "…"`.
const textUserinfo = /\b[A-Za-z][A-Za-z0-9+.-]{0,30}:\/\/([^\s/?#@\\'"<>]{1,512})@/g
const textParam = /[?&;]([A-Za-z0-9_.%-]{1,64})=([^&\s#;"'<>]{1,1024})/g
const textAssignment =
  /(?:key|token(?!s)|secret|password|passwd|credential)[A-Za-z0-9_-]{0,20}["']?\s{0,8}[:=]\s{0,8}["']?([^\s"',;}{\]]{1,1024})/gi

/** The longest span a pattern above can mark. */
const patternReach = 1_200

const spansIn = (head: string, secrets: Secrets): Array<Span> => {
  const spans: Array<Span> = []
  for (const value of secrets.values) {
    for (let at = head.indexOf(value); at >= 0; at = head.indexOf(value, at + 1)) spans.push([at, at + value.length])
  }
  for (const m of head.matchAll(textUserinfo)) {
    const info = m[1]!
    const start = m.index + m[0].length - 1 - info.length
    if (info !== mark) spans.push([start, start + info.length])
  }
  for (const m of head.matchAll(textParam)) {
    if (!isSecretName(m[1]!)) continue
    const end = m.index + m[0].length
    spans.push([end - m[2]!.length, end])
  }
  for (const m of head.matchAll(textAssignment)) {
    const value = m[1]!
    if (value === mark || value.length < minLength) continue
    const end = m.index + m[0].length
    spans.push([end - value.length, end])
  }
  return spans.sort((a, b) => a[0] - b[0])
}

/**
 * A server's text as it may be printed: at most `limit` characters (then "…"), with every known secret and
 * every credential-shaped fragment replaced by `[redacted]`. Only a bounded prefix of `text` is read, so a huge
 * body costs no more than a short one; a secret is hidden whole even where the cut falls inside it.
 */
export const quote = (text: string, secrets: Secrets, limit = 300): string => {
  // Every span that may start before `window` ends inside `head`.
  const window = limit * 4
  const head = text.slice(0, window + Math.max(secrets.longest, patternReach))
  const stop = head.length === text.length ? head.length : window
  const spans = spansIn(head, secrets)
  let out = ""
  let at = 0
  let next = 0
  while (at < stop && out.length < limit) {
    while (next < spans.length && spans[next]![1] <= at) next++
    const span = spans[next]
    if (span !== undefined && span[0] <= at) {
      // Overlapping or adjacent secrets are one mark.
      if (!out.endsWith(mark)) out += mark
      at = span[1]
      continue
    }
    let until = Math.min(stop, span === undefined ? stop : span[0], at + (limit - out.length))
    // Never half a surrogate pair.
    if (until < head.length && isHigh(head.charCodeAt(until - 1))) until--
    if (until <= at) break
    out += head.slice(at, until)
    at = until
  }
  const cut = at < text.length
  return cut ? `${out.trimEnd()}…` : out
}
