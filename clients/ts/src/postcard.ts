/**
 * The postcard format (postcard 1.x, as serde's derive writes it): a reader
 * and a writer over `Uint8Array`. Only the format: what a message holds is
 * in postcard-protocol.ts (and, for simulation kinds, in their own codecs).
 *
 * ```ts
 * const w = new PostcardWriter();
 * w.u32(6);                        // an enum's variant index: ping
 * w.option(300, (t) => w.u64(t));  // t: Option<u64>
 * w.finish();                      // Uint8Array [0x06, 0x01, 0xac, 0x02]
 * const r = new PostcardReader(w.finish());
 * r.u32(); r.option(() => r.u64()); r.end(); // 6, 300
 * ```
 *
 * The rules (docs/protocol.md, "Postcard"): unsigned integers, enum
 * variant indexes and lengths are LEB128 varints; signed integers are
 * zigzag varints; `f64` is 8 bytes little-endian; `bool` one byte 0 / 1;
 * strings, sequences and maps are their length (byte length for strings,
 * element count otherwise), then the bytes / elements; `Option` is `0x00`
 * or `0x01` then the value. Structs are their fields in order.
 *
 * Numbers are JavaScript numbers: a `u64` or `i64` beyond 2^53 reads back
 * rounded, exactly as `JSON.parse` rounds it.
 */
import { DecodeError } from "./protocol.js";

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Strings up to this many bytes are read without the `TextDecoder` (which costs more per call than it saves on short ASCII). */
const SHORT_STRING = 32;
/** Map keys up to this many bytes are remembered (see {@link PostcardReader.key}). */
const SHORT_KEY = 32;
const KEY_CACHE_SIZE = 1024;
const TWO_32 = 2 ** 32;
const TWO_63 = 2 ** 63;
const TWO_64 = 2 ** 64;

/** Reads postcard values from `bytes`, front to back; any malformed input throws {@link DecodeError}. */
export class PostcardReader {
  readonly bytes: Uint8Array;
  /** The offset of the next byte to read. */
  pos = 0;
  private view: DataView | undefined;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Throws unless every byte was read (a frame holds exactly one message). */
  end(what = "the message"): void {
    if (this.pos !== this.bytes.length) throw new DecodeError(`${what}: ${this.remaining} trailing bytes`);
  }

  byte(): number {
    const b = this.bytes[this.pos];
    if (b === undefined) throw new DecodeError("postcard: unexpected end of input");
    this.pos++;
    return b;
  }

  /** A `u32` varint (also enum variant indexes): at most 5 bytes. */
  u32(): number {
    let out = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      if (i === 4 && b > 0x0f) throw new DecodeError("postcard: varint too large for u32");
      out += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return out;
    }
    throw new DecodeError("postcard: varint too large for u32");
  }

  /** A `u64` varint: at most 10 bytes. Beyond 2^53 the number is rounded. */
  u64(): number {
    const big = this.varint64();
    return typeof big === "number" ? big : Number(big);
  }

  /** An `i64` (zigzag varint). Beyond ±2^53 the number is rounded. */
  i64(): number {
    const u = this.varint64();
    if (typeof u === "number") return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
    return Number((u >> 1n) ^ -(u & 1n));
  }

  /** An `f64`, 8 bytes little-endian. */
  f64(): number {
    if (this.remaining < 8) throw new DecodeError("postcard: unexpected end of input");
    this.view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    const f = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return f;
  }

  bool(): boolean {
    const b = this.byte();
    if (b > 1) throw new DecodeError(`postcard: ${b} is not a bool`);
    return b === 1;
  }

  /** A length prefix (string bytes, sequence or map entries), never more than the bytes left: each element takes at least one. */
  length(): number {
    const n = this.u64();
    if (n > this.remaining) throw new DecodeError(`postcard: a length of ${n} with ${this.remaining} bytes left`);
    return n;
  }

  string(): string {
    const n = this.length();
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    const bytes = this.bytes;
    if (n <= SHORT_STRING) {
      let s = "";
      for (let i = start; i < end; i++) {
        const c = bytes[i]!;
        if (c >= 0x80) return decodeUtf8(bytes.subarray(start, end));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return decodeUtf8(bytes.subarray(start, end));
  }

  /**
   * A string that is a map key. Keys repeat row after row, so short ASCII
   * ones are looked up among those read before and come back as the same
   * string, which the engine has hashed and internalized already (building
   * a fresh key string for every row costs more than reading the row).
   */
  key(): string {
    const n = this.length();
    if (n > SHORT_KEY) return this.stringOf(n);
    const bytes = this.bytes;
    const start = this.pos;
    const end = start + n;
    let h = n;
    for (let i = start; i < end; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) return this.stringOf(n);
      h = Math.imul(h ^ c, 0x01000193);
    }
    this.pos = end;
    const hit = keyCache.get(h);
    if (hit !== undefined && hit.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (hit.charCodeAt(i) !== bytes[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return hit;
    }
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
    // A property name comes back as the engine's internalized string.
    s = Object.keys({ [s]: 0 })[0] ?? s;
    if (keyCache.size >= KEY_CACHE_SIZE) keyCache.clear();
    keyCache.set(h, s);
    return s;
  }

  /** The string of the next `n` bytes (after its length prefix). */
  private stringOf(n: number): string {
    const start = this.pos;
    this.pos += n;
    return decodeUtf8(this.bytes.subarray(start, start + n));
  }

  /** `Option<T>`: undefined for none. */
  option<T>(read: () => T): T | undefined {
    const b = this.byte();
    if (b === 0) return undefined;
    if (b === 1) return read();
    throw new DecodeError(`postcard: ${b} is not an option tag`);
  }

  /** `Vec<T>`. */
  seq<T>(read: () => T): T[] {
    const n = this.length();
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(read());
    return out;
  }

  /** The unsigned varint of a `u64`: a number while it is exact (up to 7 bytes, 49 bits), else a bigint. */
  private varint64(): number | bigint {
    let out = 0;
    for (let i = 0; i < 7; i++) {
      const b = this.byte();
      out += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return out;
    }
    let big = BigInt(out);
    for (let i = 7; i < 10; i++) {
      const b = this.byte();
      if (i === 9 && b > 0x01) throw new DecodeError("postcard: varint too large for u64");
      big |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (b < 0x80) return big;
    }
    throw new DecodeError("postcard: varint too large for u64");
  }
}

/** Map keys read before, by a hash of their bytes (short ASCII keys only). */
const keyCache = new Map<number, string>();

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new DecodeError("postcard: a string is not UTF-8");
  }
}

/** Writes postcard values into a growing buffer; {@link finish} returns the bytes. A value the format cannot hold throws a `RangeError`. */
export class PostcardWriter {
  private buf = new Uint8Array(64);
  private len = 0;
  private view = new DataView(this.buf.buffer);

  /** The bytes written so far (a copy). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  /** A `u32` (also enum variant indexes). */
  u32(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= TWO_32) throw new RangeError(`${n} is not a u32`);
    this.varint(n);
  }

  /** A `u64`: any integer number from 0 below 2^64. */
  u64(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= TWO_64) throw new RangeError(`${n} is not a u64`);
    this.varint(n);
  }

  /** An `i64` (zigzag): any integer number from -2^63 below 2^63. */
  i64(n: number): void {
    if (!Number.isInteger(n) || n < -TWO_63 || n >= TWO_63) throw new RangeError(`${n} is not an i64`);
    if (Math.abs(n) <= Number.MAX_SAFE_INTEGER / 2) {
      this.varint(n < 0 ? -2 * n - 1 : 2 * n);
    } else {
      const b = BigInt(n);
      this.bigVarint(b < 0n ? -2n * b - 1n : 2n * b);
    }
  }

  f64(n: number): void {
    this.reserve(8);
    this.view.setFloat64(this.len, n, true);
    this.len += 8;
  }

  bool(b: boolean): void {
    this.byte(b ? 1 : 0);
  }

  /** A length prefix. */
  length(n: number): void {
    this.varint(n);
  }

  string(s: string): void {
    const n = s.length;
    if (n <= SHORT_STRING) {
      this.reserve(n + 1);
      let ascii = true;
      for (let i = 0; i < n; i++) {
        if (s.charCodeAt(i) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        this.buf[this.len++] = n;
        for (let i = 0; i < n; i++) this.buf[this.len++] = s.charCodeAt(i);
        return;
      }
    }
    const bytes = utf8Encoder.encode(s);
    this.varint(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** `Option<T>`: none for undefined (and null). */
  option<T>(v: T | undefined | null, write: (v: T) => void): void {
    if (v === undefined || v === null) {
      this.byte(0);
    } else {
      this.byte(1);
      write(v);
    }
  }

  /** `Vec<T>`. */
  seq<T>(items: readonly T[], write: (item: T) => void): void {
    this.varint(items.length);
    for (const item of items) write(item);
  }

  /** An unsigned LEB128 varint of an integer number below 2^64 (exact for every such double: the divisions are by powers of two). */
  private varint(n: number): void {
    this.reserve(10);
    const buf = this.buf;
    while (n >= 0x80) {
      buf[this.len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    buf[this.len++] = n;
  }

  private bigVarint(n: bigint): void {
    this.reserve(10);
    while (n >= 0x80n) {
      this.buf[this.len++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.buf[this.len++] = Number(n);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

/**
 * Reads one whole message from `r`: its variant index, then what `fields`
 * reads for that variant, then nothing (a frame holds exactly one). An
 * index past `types` is a newer peer's message: {@link DecodeError} with
 * `unknownType`, which callers ignore.
 */
export function readMessage<T extends string, M>(r: PostcardReader, types: readonly T[], fields: (type: T) => M): M {
  const tag = r.u32();
  const type = types[tag];
  if (type === undefined) throw new DecodeError(`unknown message type ${tag}`, true);
  const msg = fields(type);
  r.end(type);
  return msg;
}

/** `{ [key]: value }`, or `{}` when the value is absent: the field JSON leaves out. */
export function present<K extends string, T>(key: K, value: T | undefined): { [P in K]?: T } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: T });
}
