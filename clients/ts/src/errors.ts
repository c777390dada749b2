/**
 * The client's error type, shared by every socket (shard, simulation,
 * matchmaking) and the HTTP calls: its own module so that the connection
 * lifecycle (connection.ts) and the clients built on it import it without
 * a cycle.
 */

/** `code` of a server function's own refusal (`ctx.error(code, message)`); its message starts with the app's code and `:`. */
export const FUNCTION_ERROR = "FUNCTION_ERROR";

/** The app's code at the start of a `FUNCTION_ERROR` message (UPPER_SNAKE, as the server writes it). */
const APP_CODE = /^([A-Z0-9_]+):/;

/**
 * An error from the server (`code` is the protocol's error code) or from the
 * client: `NOT_CONNECTED` (broadcast / ping while not live), `DISCONNECTED`
 * (a ping's connection dropped), `CLOSED` (the client stopped; `closeCode`
 * says why), `BAD_REQUEST` (a call the client refuses). Over HTTP, `status`
 * is the answer's status.
 */
export class PylonError extends Error {
  readonly code: string;
  readonly op: string | undefined;
  readonly sub: string | undefined;
  readonly closeCode: number | undefined;
  readonly status: number | undefined;
  constructor(code: string, message: string, extra: { op?: string; sub?: string; closeCode?: number; status?: number } = {}) {
    super(message);
    this.name = "PylonError";
    this.code = code;
    this.op = extra.op;
    this.sub = extra.sub;
    this.closeCode = extra.closeCode;
    this.status = extra.status;
  }

  /**
   * For `FUNCTION_ERROR` (a server function refused with
   * `ctx.error("CARD_LOCKED", "…")`), the app's own code: `"CARD_LOCKED"`.
   * Undefined for every other error.
   */
  get appCode(): string | undefined {
    if (this.code !== FUNCTION_ERROR) return undefined;
    return APP_CODE.exec(this.message)?.[1];
  }
}
