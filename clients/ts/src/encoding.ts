/**
 * The two encodings a socket may speak, chosen by WebSocket subprotocol
 * (docs/protocol.md, "Negotiation"): `pylon.v1.json` in text frames (the
 * default) or `pylon.v1.postcard` in binary frames. Shared by the shard
 * client and the simulation client.
 *
 * ```ts
 * subprotocolOf("postcard");               // "pylon.v1.postcard"
 * framePayload("postcard", "pylon.keepalive.ack"); // null: the keepalive's answer, in both encodings
 * framePayload("postcard", new ArrayBuffer(2));    // Uint8Array of 2 bytes
 * framePayload("postcard", '{"type":"pong"}');     // throws DecodeError: text frame on pylon.v1.postcard
 * ```
 */
import { DecodeError, KEEPALIVE_ACK } from "./protocol.js";

/** A wire encoding: `json` (text frames, the default) or `postcard` (binary frames, smaller). */
export type Encoding = "json" | "postcard";

export const ENCODINGS: readonly Encoding[] = ["json", "postcard"];

/** The subprotocol that asks for an encoding. */
export function subprotocolOf(encoding: Encoding): string {
  return `pylon.v1.${encoding}`;
}

/** The encoding an option names; default json. Throws a `TypeError` for anything else. */
export function checkEncoding(encoding: unknown): Encoding {
  if (encoding === undefined) return "json";
  if (!(ENCODINGS as readonly unknown[]).includes(encoding)) {
    throw new TypeError(`encoding must be "json" or "postcard", not ${JSON.stringify(encoding)}`);
  }
  return encoding as Encoding;
}

/**
 * A received frame's message payload: the text of a JSON frame, the bytes
 * of a postcard frame, or null for the keepalive's answer (a text frame in
 * both encodings, which only proves the connection lives). Binary data may
 * come as an `ArrayBuffer` (`binaryType = "arraybuffer"`, which the clients
 * set) or any typed array (Node's `ws` gives a `Buffer`). A frame of the
 * other kind throws {@link DecodeError}.
 */
export function framePayload(encoding: Encoding, data: unknown): string | Uint8Array | null {
  if (typeof data === "string") {
    if (data === KEEPALIVE_ACK) return null;
    if (encoding === "json") return data;
    throw new DecodeError("text frame on pylon.v1.postcard (expected binary)");
  }
  let bytes: Uint8Array | undefined;
  if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes === undefined) throw new DecodeError("a frame that is neither text nor bytes (is binaryType \"arraybuffer\"?)");
  if (encoding === "postcard") return bytes;
  throw new DecodeError("binary frame on pylon.v1.json (expected text)");
}
