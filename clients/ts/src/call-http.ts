/**
 * A server function over HTTP, without a socket: `POST
 * /v1/shards/{shard}/fn/{name}` with the arguments as the JSON body (for
 * servers and scripts, and the way to run an action). The answer is
 * `{value, seq, dup}`, or `{"error": {code, message}}` with an HTTP status.
 *
 * ```ts
 * const { value } = await callHttp("https://api.example.com", "team-42", "moveCard", { cardId: "k1" }, { token, op: crypto.randomUUID() });
 * ```
 */
import { PylonError } from "./errors.js";
import type { Json } from "./protocol.js";
import { httpOrigin, pathSegment, resolveToken, type TokenSource } from "./transport.js";

export interface CallHttpOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: TokenSource;
  /**
   * The op id (`?op=`): a mutation sent again with the same one runs once
   * and is answered with its first result (`dup: true`). Without one every
   * request runs the function again.
   */
  op?: string;
  /** More request headers (e.g. a session's `csrfHeaders()` for cookie-authenticated pages). */
  headers?: Record<string, string>;
  /** Default the global `fetch`. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/** What the function returned. */
export interface CallHttpResult {
  value: Json;
  /** A mutation that wrote: the seq it committed at; a query: the seq it read at. Undefined for an action (run outside the shard). */
  seq: number | undefined;
  /** The op had already been applied: this is its first answer. */
  dup: boolean;
}

/**
 * Runs server function `name` of `shard` over HTTP. Rejects with a
 * {@link PylonError}: the server's `code` (`UNKNOWN_FUNCTION`, `BAD_ARGS`,
 * `FUNCTION_ERROR` with its `appCode`, …) and `status`; `HTTP_<status>`
 * for an error without the API's body; `BAD_RESPONSE` for a success that
 * is not `{value}`; `UNAVAILABLE` when the request did not get an answer.
 */
export async function callHttp(baseUrl: string, shard: string, name: string, args: Json = null, options: CallHttpOptions = {}): Promise<CallHttpResult> {
  const f = options.fetch ?? globalThis.fetch;
  const query = options.op === undefined ? "" : `?op=${encodeURIComponent(options.op)}`;
  const path = `/v1/shards/${pathSegment(shard)}/fn/${encodeURIComponent(name)}${query}`;
  const headers: Record<string, string> = { "content-type": "application/json", ...options.headers };
  const token = await resolveToken(options.token);
  if (token !== undefined && token !== "") headers.authorization = `Bearer ${token}`;
  const op = options.op === undefined ? {} : { op: options.op };
  let resp: Response;
  try {
    resp = await f(`${httpOrigin(baseUrl)}${path}`, {
      method: "POST",
      headers,
      body: JSON.stringify(args ?? null),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (e) {
    throw new PylonError("UNAVAILABLE", `POST ${path}: ${String(e)}`, op);
  }
  const text = await resp.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const at = { ...op, status: resp.status };
  if (!resp.ok) {
    const err = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = typeof err?.code === "string" ? err.code : `HTTP_${resp.status}`;
    const message = typeof err?.message === "string" ? err.message : `POST ${path} answered ${resp.status}`;
    throw new PylonError(code, message, at);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body) || !("value" in body)) {
    throw new PylonError("BAD_RESPONSE", `POST ${path}: the answer is not {value}`, at);
  }
  const b = body as { value: Json; seq?: unknown; dup?: unknown };
  const seq = typeof b.seq === "number" && Number.isInteger(b.seq) && b.seq >= 0 ? b.seq : undefined;
  return { value: b.value, seq, dup: b.dup === true };
}
