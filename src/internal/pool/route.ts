/**
 * The pool's pure decisions: which failures are the kernel's (eject it, move the call), and which candidate a
 * call goes to (fewest calls in flight).
 */
import type * as BackendError from "../../BackendError.js"

/**
 * Failures that say the kernel itself is unwell: nothing answers, no answer in time, or it (or whatever it relays
 * to) failed with a 5xx. A rate limit, a refusal (4xx) or an odd answer is the provider's or the request's: moving
 * the call would only repeat it elsewhere.
 */
export const kernelKinds: ReadonlySet<BackendError.ErrorKind> = new Set<BackendError.ErrorKind>([
  "unreachable",
  "timeout",
  "server",
  "overloaded"
])

/** Whether `error` ejects the kernel that gave it and lets the call move to another. */
export const isKernelFailure = (error: BackendError.BackendError): boolean => kernelKinds.has(error.kind)

/**
 * The index (into `inFlight`) of the candidate with the fewest calls in flight. Ties go to the first one at or
 * after `start` (taken modulo the length), so calls one after another spread over idle kernels instead of all
 * landing on the first. `-1` when there is no candidate. Linear in the number of candidates.
 */
export const fewestInFlight = (inFlight: ReadonlyArray<number>, start: number): number => {
  const n = inFlight.length
  if (n === 0) return -1
  const offset = ((start % n) + n) % n
  let best = -1
  let bestLoad = Infinity
  for (let step = 0; step < n; step++) {
    const i = (offset + step) % n
    const load = inFlight[i]!
    if (load < bestLoad) {
      best = i
      bestLoad = load
    }
  }
  return best
}
