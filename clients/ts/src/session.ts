/**
 * Sessions issued by the server's sign-in (`/v1/auth/...`, docs/sign-in.md)
 * for pages: a token source for `connect({ token })` that refreshes the
 * short-lived access token through the HttpOnly refresh cookie, the CSRF
 * header cookie-authenticated requests need, and logout.
 *
 * ```ts
 * import { connect, browserSession } from "@pylon-workers/client";
 * const session = browserSession({ url: location.origin });
 * const client = connect({ url: location.origin, shard: "room-1", token: () => session.token() });
 * await fetch("/v1/shards/room-1/mutate", { method: "POST", headers: session.csrfHeaders(), body });
 * await session.logout();
 * ```
 */

/** The cookie holding the CSRF token, and the header it is copied into. */
export const CSRF_COOKIE = "pylon_csrf";
export const CSRF_HEADER = "x-csrf-token";

/** A refused refresh or logout: `code` is the server's (`REFRESH_REUSED`, `REFRESH_INVALID`, `CSRF_FAILED`, ...). */
export class SessionError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "SessionError";
    this.status = status;
    this.code = code;
  }
}

export interface SessionOptions {
  /** The server's origin, e.g. `https://api.example.com`. */
  url: string;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Reads `document.cookie` by default (the CSRF cookie is readable by design). */
  cookies?: () => string;
  /** Milliseconds since the epoch; defaults to `Date.now`. */
  now?: () => number;
  /** Refresh this long before the access token expires (default 30 s). */
  marginMs?: number;
}

export interface BrowserSession {
  /** A valid access token: the cached one, or a fresh one from `POST /v1/auth/refresh`. */
  token(): Promise<string>;
  /** `{"x-csrf-token": ...}` for your own cookie-authenticated POSTs. */
  csrfHeaders(): Record<string, string>;
  /** Revokes the session and clears its cookies. */
  logout(): Promise<void>;
}

/** The value of cookie `name` in a `document.cookie`-style string. */
export function readCookie(cookies: string, name: string): string | undefined {
  for (const part of cookies.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) {
      const v = part.slice(i + 1).trim();
      return v === "" ? undefined : v;
    }
  }
  return undefined;
}

async function failure(resp: Response): Promise<SessionError> {
  let code = "HTTP_" + resp.status;
  let message = `the server answered ${resp.status}`;
  try {
    const body = (await resp.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    // Not the API's error shape: keep the status.
  }
  return new SessionError(resp.status, code, message);
}

/** A session kept by the browser's cookies (see the module docs). */
export function browserSession(options: SessionOptions): BrowserSession {
  const base = options.url.replace(/\/+$/, "");
  const doFetch = options.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  const cookies = options.cookies ?? (() => (globalThis as { document?: { cookie: string } }).document?.cookie ?? "");
  const now = options.now ?? Date.now;
  const margin = options.marginMs ?? 30_000;
  let cached: { token: string; expiresAt: number } | undefined;
  let pending: Promise<string> | undefined;

  const csrfHeaders = (): Record<string, string> => {
    const t = readCookie(cookies(), CSRF_COOKIE);
    return t === undefined ? {} : { [CSRF_HEADER]: t };
  };

  const refresh = async (): Promise<string> => {
    const resp = await doFetch(`${base}/v1/auth/refresh`, {
      method: "POST",
      credentials: "include",
      headers: csrfHeaders(),
    });
    if (!resp.ok) {
      cached = undefined;
      throw await failure(resp);
    }
    const body = (await resp.json()) as { access_token: string; expires_in: number };
    cached = { token: body.access_token, expiresAt: now() + body.expires_in * 1000 };
    return body.access_token;
  };

  return {
    token() {
      if (cached && now() < cached.expiresAt - margin) return Promise.resolve(cached.token);
      // One refresh at a time: a second would present a used refresh token
      // and revoke the session.
      pending ??= refresh().finally(() => {
        pending = undefined;
      });
      return pending;
    },
    csrfHeaders,
    async logout() {
      cached = undefined;
      const resp = await doFetch(`${base}/v1/auth/logout`, {
        method: "POST",
        credentials: "include",
        headers: csrfHeaders(),
      });
      if (!resp.ok) throw await failure(resp);
    },
  };
}
