import * as Option from "effect/Option"

/**
 * How deeply a JSON value from a model or a server may nest. `JSON.parse` takes any depth, but what handles the
 * value next often recurses (`JSON.stringify`, `structuredClone`, schema validators) and overflows the stack at
 * some thousands of levels; no real tool call nests anywhere near this.
 */
export const MAX_JSON_DEPTH = 256

/**
 * Whether JSON text nests arrays and objects at most `max` levels deep (brackets inside strings do not count).
 * One pass, no recursion; text too short to nest that deep is not read.
 */
export const nestsAtMost = (text: string, max: number = MAX_JSON_DEPTH): boolean => {
  if (text.length <= max) return true
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      // A string: to its closing quote, escapes skipped.
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++
    } else if (c === 123 || c === 91) {
      if (++depth > max) return false
    } else if (c === 125 || c === 93) depth--
  }
  return true
}

/**
 * `text` parsed as a JSON object; invalid JSON, `null`, an array, a scalar, or an object nested more than
 * `MAX_JSON_DEPTH` levels deep is `None`. Never throws.
 */
export const jsonObject = (text: string): Option.Option<Record<string, unknown>> => {
  if (!nestsAtMost(text)) return Option.none()
  try {
    const parsed: unknown = JSON.parse(text)
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
      ? Option.some(parsed as Record<string, unknown>)
      : Option.none()
  } catch {
    return Option.none()
  }
}

/**
 * Streamed tool-call arguments: a JSON object (as `jsonObject`: not nested too deeply), where no text at all
 * means a call without parameters.
 */
export const toolCallArguments = (text: string): Option.Option<Record<string, unknown>> =>
  text.trim() === "" ? Option.some({}) : jsonObject(text)
