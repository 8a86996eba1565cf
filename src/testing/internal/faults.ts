/**
 * The reference server's faults that mean the same on every endpoint and wire format: they act on the transport
 * (status and raw body, timing, the socket), not on the protocol's error shapes.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"
import type { Fault } from "../ReferenceKernel.js"

/** Waits in real time: the server serves tests whose own clock may be a `TestClock`. */
export const realSleep = (ms: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/** The faults that act on the transport, the same for every wire format. */
export type TransportFault = Extract<Fault, { readonly _tag: "Http" | "Delay" | "Hang" | "Reset" }>

export const isTransportFault = (fault: Fault): fault is TransportFault =>
  fault._tag === "Http" || fault._tag === "Delay" || fault._tag === "Hang" || fault._tag === "Reset"

/** Applies a transport fault: a response, `undefined` (answer normally, after a delay), or never. */
export const transportFault = (
  request: HttpServerRequest.HttpServerRequest,
  fault: TransportFault
): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> => {
  switch (fault._tag) {
    case "Http":
      return Effect.succeed(
        HttpServerResponse.text(fault.body ?? (fault.status === 422 ? "{\"detail\":[]}" : "Internal Server Error"), {
          status: fault.status,
          contentType: fault.contentType ?? (fault.body?.startsWith("{") ? "application/json" : "text/plain"),
          headers: fault.headers ?? {}
        })
      )
    case "Delay":
      return Effect.as(realSleep(fault.ms), undefined)
    case "Hang":
      return Effect.never
    case "Reset":
      return Effect.zipRight(
        Effect.sync(() => NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()),
        Effect.never
      )
  }
}
