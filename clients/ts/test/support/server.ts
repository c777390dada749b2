// A scripted pylon.v1 server for the tests: a minimal RFC 6455 WebSocket
// server (text, binary, close, ping frames; fragmentation) over
// node:http's upgrade event, on 127.0.0.1. It negotiates the subprotocol
// like the shard (first supported `pylon.*` entry, echoed) and speaks the
// encoding it chose: JSON text frames, or postcard binary frames through
// the client library's own codec (checked against the Rust encoder's
// golden vectors in postcard.test.ts). Each test plays the server's
// messages itself, and may script plain HTTP answers too.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Socket } from "node:net";
import { decodeClientPostcard, encodeServerPostcard } from "../../dist/index.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const TIMEOUT_MS = 3000;

export interface ServerOptions {
  /** Answer upgrades with this HTTP status instead of accepting them. */
  refuse?: () => number | undefined;
  /** The subprotocol to echo; default: the first of pylon.v1.json and pylon.v1.postcard offered. */
  echo?: (offered: string[]) => string | undefined;
  /** How messages go in binary frames (postcard); default pylon.v1's client and server messages. */
  binary?: BinaryCodec;
  /** Answers plain HTTP requests (default: 426 to all); `body` is sent as JSON. */
  http?: (req: HttpRequest) => { status: number; body?: unknown } | undefined;
}

/** The server's side of a postcard protocol: what it reads from and writes to binary frames. */
export interface BinaryCodec {
  decode(bytes: Uint8Array): any;
  encode(msg: any): Uint8Array;
}

const PYLON_V1: BinaryCodec = { decode: decodeClientPostcard, encode: encodeServerPostcard };
const SUPPORTED = ["pylon.v1.json", "pylon.v1.postcard"];

/** A plain HTTP request the server received. */
export interface HttpRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

class Queue<T> {
  private items: T[] = [];
  private waiters: { resolve: (v: T) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  push(item: T): void {
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(item);
    } else this.items.push(item);
  }
  next(what: string, timeoutMs = TIMEOUT_MS): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift()!);
    return new Promise((resolve, reject) => {
      const w = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for ${what}`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }
  get pending(): number {
    return this.items.length;
  }
}

function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  let head: Buffer;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

export class FakeConn {
  readonly path: string;
  readonly protocols: string[];
  readonly headers: IncomingMessage["headers"];
  /** The encoding negotiated: postcard when pylon.v1.postcard was echoed. */
  readonly encoding: "json" | "postcard";
  /** Every message the client sent, in order. */
  readonly log: any[] = [];
  private readonly socket: Socket;
  private readonly binary: BinaryCodec;
  private readonly inbox = new Queue<any>();
  private buf = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOp = 0x1;
  private closeInfo: { code: number | undefined } | undefined;
  private readonly closedQ = new Queue<{ code: number | undefined }>();

  constructor(socket: Socket, req: IncomingMessage, protocols: string[], echoed: string | undefined, binary: BinaryCodec) {
    this.socket = socket;
    this.encoding = echoed === "pylon.v1.postcard" ? "postcard" : "json";
    this.binary = binary;
    this.path = req.url ?? "";
    this.headers = req.headers;
    this.protocols = protocols;
    socket.on("data", (d) => this.onData(d));
    socket.on("close", () => this.onClosed(undefined));
    socket.on("error", () => {});
  }

  private onClosed(code: number | undefined): void {
    if (this.closeInfo) return;
    this.closeInfo = { code };
    this.closedQ.push(this.closeInfo);
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const maskLen = masked ? 4 : 0;
      if (this.buf.length < off + maskLen + len) return;
      const mask = this.buf.subarray(off, off + maskLen);
      const payload = Buffer.from(this.buf.subarray(off + maskLen, off + maskLen + len));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i % 4]!;
      this.buf = this.buf.subarray(off + maskLen + len);
      this.onFrame(fin, opcode, payload);
    }
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode === 0x8) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
      if (!this.socket.destroyed) this.socket.end(frame(0x8, payload.subarray(0, 2)));
      this.onClosed(code);
      return;
    }
    if (opcode === 0x9) {
      this.socket.write(frame(0xa, payload));
      return;
    }
    if (opcode === 0xa) return;
    if (opcode === 0x2 || (opcode === 0x0 && this.fragmentOp === 0x2)) {
      this.fragmentOp = 0x2;
      this.fragments.push(payload);
      if (!fin) return;
      const bytes = new Uint8Array(Buffer.concat(this.fragments));
      this.fragments = [];
      // A frame this codec cannot read is kept as `{ binary }`.
      let msg: any;
      try {
        msg = this.binary.decode(bytes);
      } catch {
        msg = { binary: bytes };
      }
      this.log.push(msg);
      this.inbox.push(msg);
      return;
    }
    if (opcode === 0x1 || opcode === 0x0) {
      this.fragmentOp = 0x1;
      this.fragments.push(payload);
      if (!fin) return;
      const text = Buffer.concat(this.fragments).toString("utf8");
      this.fragments = [];
      // A frame that is not JSON (the keepalive) is kept as `{ raw }`.
      let msg: any;
      try {
        msg = JSON.parse(text);
      } catch {
        msg = { raw: text };
      }
      this.log.push(msg);
      this.inbox.push(msg);
    }
  }

  /** The next message from the client. */
  recv(timeoutMs?: number): Promise<any> {
    return this.inbox.next("a client message", timeoutMs);
  }

  /** The next message, which must have `type`. */
  async expect(type: string): Promise<any> {
    const m = await this.recv();
    if (m.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(m)}`);
    return m;
  }

  /** Messages received but not yet read with recv. */
  get unread(): number {
    return this.inbox.pending;
  }

  /** Sends a message in the connection's encoding. */
  send(msg: object): void {
    if (this.encoding === "postcard") this.sendBinary(Buffer.from(this.binary.encode(msg)));
    else this.sendText(JSON.stringify(msg));
  }

  sendText(text: string): void {
    if (!this.socket.destroyed) this.socket.write(frame(0x1, Buffer.from(text, "utf8")));
  }

  sendBinary(data: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(frame(0x2, data));
  }

  /** `welcome` and an empty `presence_state`, as the shard starts every connection. */
  welcome(seq = 0, conn = "c-1"): void {
    this.send({ type: "welcome", protocol: "pylon.v1", shard: "team-42", seq, conn, encoding: this.encoding });
    this.send({ type: "presence_state", members: [] });
  }

  /** Closes with a close frame carrying `code`. */
  close(code: number, reason = ""): void {
    if (this.socket.destroyed) return;
    const r = Buffer.from(reason, "utf8");
    const p = Buffer.alloc(2 + r.length);
    p.writeUInt16BE(code, 0);
    r.copy(p, 2);
    this.socket.end(frame(0x8, p));
  }

  /** Drops the TCP connection without a close frame. */
  drop(): void {
    this.socket.destroy();
  }

  /** Resolves when the connection has ended (with the client's close code, if it sent one). */
  closed(timeoutMs?: number): Promise<{ code: number | undefined }> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return this.closedQ.next("the connection to close", timeoutMs);
  }
}

export class FakeServer {
  readonly url: string;
  readonly connections: FakeConn[] = [];
  /** Every plain HTTP request, in order. */
  readonly requests: HttpRequest[];
  /** Upgrade requests answered (accepted or refused). */
  upgrades = 0;
  private readonly server: Server;
  private readonly incoming = new Queue<FakeConn>();
  private readonly sockets = new Set<Socket>();

  private constructor(server: Server, port: number, requests: HttpRequest[]) {
    this.server = server;
    this.url = `ws://127.0.0.1:${port}`;
    this.requests = requests;
  }

  static async start(options: ServerOptions = {}): Promise<FakeServer> {
    const requests: HttpRequest[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
        requests.push(r);
        const answer = options.http?.(r);
        if (!answer) {
          res.writeHead(426).end();
          return;
        }
        res.writeHead(answer.status, { "content-type": "application/json" });
        res.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new Error("no port");
    const fake = new FakeServer(server, addr.port, requests);
    server.on("upgrade", (req: IncomingMessage, socket: Socket) => fake.onUpgrade(req, socket, options));
    return fake;
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, options: ServerOptions): void {
    this.upgrades++;
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    const refuse = options.refuse?.();
    if (refuse !== undefined) {
      socket.end(`HTTP/1.1 ${refuse} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    const key = req.headers["sec-websocket-key"];
    const offered = String(req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    const echo = options.echo ? options.echo(offered) : offered.find((p) => SUPPORTED.includes(p));
    const accept = createHash("sha1").update(`${key}${GUID}`).digest("base64");
    socket.setNoDelay(true);
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n` +
        (echo === undefined ? "" : `Sec-WebSocket-Protocol: ${echo}\r\n`) +
        "\r\n",
    );
    const conn = new FakeConn(socket, req, offered, echo, options.binary ?? PYLON_V1);
    this.connections.push(conn);
    this.incoming.push(conn);
  }

  /** The next accepted connection. */
  nextConnection(timeoutMs?: number): Promise<FakeConn> {
    return this.incoming.next("a connection", timeoutMs);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
