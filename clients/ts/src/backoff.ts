/**
 * Jittered exponential backoff, the same as the Rust client's `Backoff`:
 * the delay before attempt `n` (0 = first retry) is uniform in `[d/2, d]`
 * with `d = min(maxMs, initialMs * factor^n)` ("equal jitter": never zero,
 * never in lockstep with other clients).
 */
export interface BackoffOptions {
  /** The upper bound of the first delay. Default 250 ms. */
  initialMs: number;
  /** The cap on the upper bound. Default 10 s. */
  maxMs: number;
  /** Growth per failed attempt. Default 2. */
  factor: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialMs: 250, maxMs: 10_000, factor: 2 });

/** The delay in ms before attempt `attempt`; `random` returns a number in [0, 1). */
export function backoffDelay(options: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const exp = Math.pow(Math.max(options.factor, 1), Math.min(Math.max(attempt, 0), 64));
  const cap = Math.max(0, Math.min(options.maxMs, options.initialMs * exp));
  return cap / 2 + (cap / 2) * random();
}
