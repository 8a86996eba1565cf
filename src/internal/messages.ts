/**
 * The wording of `BackendError` messages: how a server, a model, a list of names and a socket error are named,
 * and how a sentence ends (one full stop).
 */

/** How a `BackendUnreachable` message ends. */
export const unreachableEnd = "Is it running? Start it or set AIOS_URL / baseUrl."

/** The most model names a message lists. */
export const listedNames = 5

/** A few names, then how many more: "a, b, c, d, e and 199,995 more". */
export const listed = (names: ReadonlyArray<string>): string => {
  if (names.length === 0) return "none"
  const shown = names.slice(0, listedNames).map(short)
  const more = names.length - shown.length
  if (more === 0) return shown.join(", ")
  return `${shown.join(", ")} and ${more.toLocaleString("en-US")} more`
}

/**
 * A socket error code in words. Hosts (OpenClaw) replace messages that carry raw codes with a generic line that
 * drops the URL, so the code stays in `detail` and the message says what it means.
 */
export const plainDetail = (detail: string): string => {
  switch (detail) {
    case "ECONNREFUSED":
      return "nothing is listening at that address"
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "the connection was dropped"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "the host name does not resolve"
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return "connecting took too long"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "the network cannot reach that host"
    default:
      return detail.replace(/[.\s]+$/, "")
  }
}

/** Text ended by one full stop: its own trailing dots dropped, none added after "!", "?" or "…". */
export const sentence = (text: string): string => {
  const trimmed = text.trim().replace(/[.\s]+$/, "")
  return /[!?…]$/.test(trimmed) ? trimmed : `${trimmed}.`
}

/** A name as a message shows it: at most 256 characters. */
export const short = (name: string): string => (name.length > 256 ? `${name.slice(0, 255)}…` : name)

/** Names the server: an OpenAI-compatible base URL ends in a version segment (`/v1`), an AIOS kernel's does not. */
export const serverKind = (url: string): string =>
  /\/v\d+$/.test(url.replace(/[?#].*$/s, "")) ? "an OpenAI-compatible endpoint" : "an AIOS kernel"

export const server = (url: string): string => `${serverKind(url).replace(/^an? /, "the ")} at ${url}`

export const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1)

export const forModel = (model: string | undefined): string => (model ? ` for model '${short(model)}'` : "")
