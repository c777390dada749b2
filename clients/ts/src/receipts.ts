/**
 * Receipts (`recv`): how a client tells the server what it has read, so a
 * socket that stops reading is closed (4408) once it is more than the
 * server's send window behind, instead of queuing without bound
 * (docs/protocol.md, "Slow readers"). One receipt per {@link RECEIPT_STEP}
 * bytes received, and never otherwise: a quiet socket sends nothing extra.
 * A receipt carries the bytes received since the previous one, counted as
 * the server counts them: a text frame's UTF-8 bytes, a binary frame's
 * length, the keepalive's answer not at all.
 *
 * ```ts
 * receiptFrame("json", 300);     // '{"type":"recv","bytes":300}'
 * receiptFrame("postcard", 300); // Uint8Array [0x7f, 0xac, 0x02]
 * utf8Length("é€");              // 5
 * ```
 */
import type { Encoding } from "./encoding.js";

/** Bytes received between two receipts (a quarter of the default window). */
export const RECEIPT_STEP = 256 * 1024;

/**
 * The receipt step for a socket whose server announced `window` bytes in
 * its `welcome`: a quarter of it, as {@link RECEIPT_STEP} is of the
 * default window; {@link RECEIPT_STEP} when none was announced.
 */
export function receiptStep(window?: number): number {
  return window === undefined ? RECEIPT_STEP : Math.max(1, Math.floor(window / 4));
}

/** The postcard tag of `recv`, the same in every socket protocol. */
export const RECEIPT_TAG = 0x7f;

/** A receipt for `bytes`, in the socket's encoding. */
export function receiptFrame(encoding: Encoding, bytes: number): string | Uint8Array {
  if (encoding === "json") return `{"type":"recv","bytes":${bytes}}`;
  const out = [RECEIPT_TAG];
  let n = bytes;
  // Division, not bit operations: those stop at 32 bits.
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** The UTF-8 length of a string, without encoding it. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 2; // a surrogate pair: 4 bytes for its 2 units
      i++;
    } else n += 2;
  }
  return n;
}

/** Counts what a socket receives and says when a receipt is due. */
export class ReceiptCounter {
  private unreceipted = 0;
  private step = RECEIPT_STEP;

  /** Counts a received payload; returns the receipt to send now, if one is due. */
  received(encoding: Encoding, payload: string | Uint8Array): string | Uint8Array | undefined {
    this.unreceipted += typeof payload === "string" ? utf8Length(payload) : payload.byteLength;
    if (this.unreceipted < this.step) return undefined;
    const frame = receiptFrame(encoding, this.unreceipted);
    this.unreceipted = 0;
    return frame;
  }

  /** The window the socket's `welcome` announced, if any, sets the step ({@link receiptStep}). */
  setWindow(window?: number): void {
    this.step = receiptStep(window);
  }

  /** A new socket starts from nothing, at the default step until its welcome. */
  reset(): void {
    this.unreceipted = 0;
    this.step = RECEIPT_STEP;
  }
}
