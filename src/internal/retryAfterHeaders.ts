// TEMPORARY: replaced by RetryAfter.ts (TurnRetry helper) once it lands.
import type * as Headers from "@effect/platform/Headers"
export const fromHeaders = (_headers: Headers.Headers): number | undefined => undefined
