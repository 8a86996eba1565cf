import * as Option from "effect/Option"

/** `text` parsed as a JSON object; invalid JSON, `null`, an array or a scalar is `None`. Never throws. */
export const jsonObject = (text: string): Option.Option<Record<string, unknown>> => {
  try {
    const parsed: unknown = JSON.parse(text)
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
      ? Option.some(parsed as Record<string, unknown>)
      : Option.none()
  } catch {
    return Option.none()
  }
}

/** Streamed tool-call arguments: a JSON object, where no text at all means a call without parameters. */
export const toolCallArguments = (text: string): Option.Option<Record<string, unknown>> =>
  text.trim() === "" ? Option.some({}) : jsonObject(text)
