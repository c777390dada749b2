/**
 * The client's error type, shared by every socket (shard, simulation,
 * matchmaking): its own module so that the connection lifecycle
 * (connection.ts) and the clients built on it import it without a cycle.
 */

/**
 * An error from the server (`code` is the protocol's error code) or from the
 * client: `NOT_CONNECTED` (broadcast / ping while not live), `DISCONNECTED`
 * (a ping's connection dropped), `CLOSED` (the client stopped; `closeCode`
 * says why), `BAD_REQUEST` (a call the client refuses).
 */
export class PylonError extends Error {
  readonly code: string;
  readonly op: string | undefined;
  readonly sub: string | undefined;
  readonly closeCode: number | undefined;
  constructor(code: string, message: string, extra: { op?: string; sub?: string; closeCode?: number } = {}) {
    super(message);
    this.name = "PylonError";
    this.code = code;
    this.op = extra.op;
    this.sub = extra.sub;
    this.closeCode = extra.closeCode;
  }
}
