/**
 * One call of a function: what it is, its bridge, and how far it got.
 *
 *   running ──handler settled──> settled
 *      └──────race lost (awaited I/O)──> ended
 *
 * A query or mutation refuses I/O until it has settled (while it runs, and
 * for whatever it left behind after the race ended it). Once it is not
 * running, `ctx` refuses to reach the bridge: the shard has moved on.
 */
import type { Bridge } from "./bridge.ts";
import type { FunctionKind } from "./ctx.ts";
import { ErrorCode, raise, type PylonError } from "./errors.ts";

export type CallState = "running" | "settled" | "ended";

export class Call {
  readonly name: string;
  readonly kind: FunctionKind;
  readonly bridge: Bridge;
  state: CallState = "running";

  constructor(name: string, kind: FunctionKind, bridge: Bridge) {
    this.name = name;
    this.kind = kind;
    this.bridge = bridge;
  }

  /** Whether I/O started in this call's async context is refused now. */
  get refusesIo(): boolean {
    return this.kind !== "action" && this.state !== "settled";
  }

  /** The error for I/O (`what`: "fetch", "setTimeout", ...) made by this call. */
  ioError(what: string): PylonError {
    const kind = this.kind;
    return raise(
      ErrorCode.MUTATION_IO,
      `${what} is not allowed in a ${kind}: a ${kind} runs inside the shard's turn; do I/O in an action`,
    );
  }

  /** Throws `CALL_ENDED` once the call has its result. */
  ensureRunning(what: string): void {
    if (this.state !== "running") {
      throw raise(ErrorCode.CALL_ENDED, `${what} was called after the call to ${this.name} had ended`);
    }
  }
}
