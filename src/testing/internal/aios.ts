/**
 * The reference kernel's AIOS `/query` wire: the real kernel's in-body error texts, its response envelope, and
 * FastAPI's validation of the request body.
 */
import type { ChatMessage, NativeTool } from "./models.js"

/** The real kernel's in-body error texts. */
export const statusText = (statusCode: number, model: string): string => {
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

export const envelope = (response: Record<string, unknown>) => ({
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
export const validateQuery = (body: unknown): Array<Detail> | {
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
