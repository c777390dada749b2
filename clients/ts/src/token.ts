/**
 * What the client reads from a token without verifying it (the server
 * verifies): when it expires, to renew it before then, and whether an
 * `err` says the connection's identity ended (docs/auth.md, "Open sockets").
 *
 * ```ts
 * jwtExpiry("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.sig"); // 1700000000
 * jwtExpiry("opaque"); // undefined
 * jwtSubject("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.sig"); // "ann"
 * ```
 */

/** A JWT's payload claims, unverified, or undefined when the token is not a JWT. */
function jwtClaims(token: string | undefined): Record<string, unknown> | undefined {
  const payload = token?.split(".")[1];
  if (!payload || payload.length > 16_384) return undefined;
  try {
    const b64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const json: unknown = JSON.parse(atob(b64 + "===".slice((b64.length + 3) % 4)));
    return typeof json === "object" && json !== null ? (json as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The `exp` claim (Unix seconds) of a JWT's payload, or undefined when the token is not a JWT or has none. */
export function jwtExpiry(token: string | undefined): number | undefined {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === "number" && Number.isFinite(exp) ? exp : undefined;
}

/**
 * The `sub` claim of a JWT's payload (unverified: the server verifies),
 * or undefined. With the default claim mapping it is the user id the
 * server will see, e.g. the `subscriber` a simulation socket may name.
 */
export function jwtSubject(token: string | undefined): string | undefined {
  const sub = jwtClaims(token)?.sub;
  return typeof sub === "string" && sub !== "" ? sub : undefined;
}

/** The reasons an `err UNAUTHORIZED` starts with when the connection's identity ended. */
export const IDENTITY_ENDED = ["TOKEN_EXPIRED", "SESSION_REVOKED"] as const;

/** Whether an `err` says the connection's token expired or its session was revoked (renew with `hello`). */
export function identityEnded(err: { code: string; message: string }): boolean {
  return err.code === "UNAUTHORIZED" && IDENTITY_ENDED.some((r) => err.message.startsWith(`${r}:`));
}

/**
 * When to renew a token that expires at `expSecs`, as a delay from `nowMs`:
 * `beforeMs` ahead of the expiry, but never sooner than halfway through
 * the time left (so a token shorter-lived than the margin is not renewed
 * in a loop).
 */
export function renewalDelay(expSecs: number, nowMs: number, beforeMs: number): number {
  const left = expSecs * 1000 - nowMs;
  return Math.max(0, left - beforeMs, Math.floor(left / 2));
}
