import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  decodeSimServer,
  joinSim,
  matchmake,
  MatchError,
  PylonError,
  SimError,
  type JoinSimOptions,
  type PendingInput,
  type SimClient,
  type SimConnectionState,
  type SimSnapshot,
  type TicketMsg,
} from "../dist/index.js";
import { FakeServer, type FakeConn, type HttpRequest } from "./support/server.ts";
import { sleep, until } from "./support/wait.ts";

type Steer = { steer: { x: number; y: number } };
type View = { me: { x: number; y: number } | null; others: { id: string; x: number; y: number }[]; players: number };

let server: FakeServer;
/** What the scripted queue answers to plain HTTP requests (set per test). */
let http: (req: HttpRequest) => { status: number; body?: unknown } | undefined = () => undefined;
const clients: SimClient<any, any>[] = [];
before(async () => {
  server = await FakeServer.start({ http: (r) => http(r) });
});
after(async () => {
  for (const c of clients) c.close();
  await server.close();
});

function welcome(conn: FakeConn, acked = 0, subscriber = "c1", tick = 40): void {
  conn.send({
    type: "sim_welcome",
    protocol: "pylon.sim.v1",
    sim: "p-1",
    kind: "plane",
    conn: subscriber.startsWith("c") ? subscriber : "c9",
    subscriber,
    tick,
    acked,
    tick_hz: 20,
    encoding: "json",
  });
}

function join(options: Partial<JoinSimOptions> = {}): SimClient<Steer, View> {
  const sim = joinSim<Steer, View>({
    url: server.url,
    kind: "plane",
    id: "p-1",
    backoff: { initialMs: 4, maxMs: 20 },
    keepaliveMs: 0,
    ...options,
  });
  clients.push(sim);
  return sim;
}

/** A client and its first welcomed connection. */
async function joined(options: Partial<JoinSimOptions> = {}, acked = 0, subscriber = "c1") {
  const sim = join(options);
  const conn = await server.nextConnection();
  welcome(conn, acked, subscriber);
  await until(() => sim.state.state === "live", "the client is live");
  return { sim, conn };
}

const steer = (x: number): Steer => ({ steer: { x, y: 0 } });
const seqs = (p: readonly PendingInput<Steer>[]) => p.map((i) => i.seq);

test("joins /v1/sims/{kind}/{id}/ws with ?subscriber= and the bearer token; seqs start after the welcome's acked", async () => {
  const sim = join({ url: server.url.replace("ws:", "http:") + "/", kind: "plane", id: "p 1", subscriber: "ann", token: async () => "tok.en-1" });
  assert.throws(() => sim.sendInput(steer(1)), (e: PylonError) => e.code === "NOT_CONNECTED", "no seq before the welcome");
  const conn = await server.nextConnection();
  assert.equal(conn.path, "/v1/sims/plane/p%201/ws?subscriber=ann");
  assert.deepEqual(conn.protocols, ["pylon.v1.json", "bearer.tok.en-1"]);
  const welcomes: number[] = [];
  sim.on("welcome", (w) => welcomes.push(w.acked));
  welcome(conn, 7, "ann");
  await until(() => sim.state.state === "live", "the client is live");
  assert.deepEqual(sim.state, { state: "live", conn: "c9", subscriber: "ann" });
  assert.equal(sim.subscriber, "ann");
  assert.equal(sim.acked, 7);
  assert.equal(sim.tick, 40);
  assert.deepEqual(welcomes, [7]);
  assert.equal(sim.sendInput(steer(1)), 8);
  assert.equal(sim.sendInput(steer(-1)), 9);
  assert.deepEqual(await conn.recv(), { type: "sim_input", seq: 8, input: { steer: { x: 1, y: 0 } } });
  assert.deepEqual(await conn.recv(), { type: "sim_input", seq: 9, input: { steer: { x: -1, y: 0 } } });
  sim.close();
  assert.equal((await conn.closed()).code, 1000);
  assert.throws(() => sim.sendInput(steer(1)), (e: PylonError) => e.code === "CLOSED");
});

test("acked and pending follow the snapshots' acked; a sim_ack leaves an input pending, a sim_err settles it", async () => {
  const { sim, conn } = await joined();
  const snaps: SimSnapshot<View>[] = [];
  const acks: number[] = [];
  const errors: SimError[] = [];
  sim.on("snapshot", (s) => snaps.push(s));
  sim.on("ack", (a) => acks.push(a.seq));
  sim.on("error", (e) => errors.push(e));
  for (const x of [1, 0.5, 0]) sim.sendInput(steer(x));
  for (let i = 0; i < 3; i++) await conn.expect("sim_input");
  assert.deepEqual(seqs(sim.pending()), [1, 2, 3]);

  conn.send({ type: "sim_ack", seq: 1, tick: 41 });
  await until(() => acks.length === 1, "the ack");
  assert.deepEqual(seqs(sim.pending()), [1, 2, 3], "durable is not yet reflected");
  assert.equal(sim.acked, 0);

  conn.send({ type: "sim_snapshot", tick: 41, acked: 2, me: { x: 5, y: 6 }, others: [{ id: "c2", x: 7, y: 8 }], players: 2 });
  await until(() => snaps.length === 1, "the snapshot");
  assert.deepEqual(snaps[0], { me: { x: 5, y: 6 }, others: [{ id: "c2", x: 7, y: 8 }], players: 2, tick: 41, acked: 2, final: false });
  assert.equal(sim.acked, 2);
  assert.equal(sim.tick, 41);
  assert.deepEqual(sim.pending(), [{ seq: 3, input: steer(0) }]);

  conn.send({ type: "sim_err", code: "QUEUE_FULL", message: "queue full", seq: 3 });
  conn.send({ type: "sim_err", code: "BAD_INPUT", message: "bad input: missing `seq`" });
  await until(() => errors.length === 2, "the errors");
  assert.ok(errors[0] instanceof SimError && errors[0] instanceof PylonError);
  assert.deepEqual([errors[0]!.code, errors[0]!.seq, errors[0]!.reason], ["QUEUE_FULL", 3, undefined]);
  assert.deepEqual([errors[1]!.code, errors[1]!.seq], ["BAD_INPUT", undefined]);
  assert.deepEqual(sim.pending(), [], "a refused input is no longer pending");
  assert.equal(sim.sendInput(steer(1)), 4, "seqs go on after a refusal");
  assert.equal(sim.state.state, "live", "refusals leave the socket open");
  sim.close();
});

test("reconnect as a named subscriber: unreflected inputs go again with the same seqs, after the new welcome", async () => {
  const { sim, conn } = await joined({ subscriber: "ann", backoff: { initialMs: 1, maxMs: 1 } }, 0, "ann");
  const dropped: unknown[] = [];
  sim.on("dropped", (d) => dropped.push(d));
  for (const x of [1, 0.5, 0.25]) sim.sendInput(steer(x));
  for (let i = 0; i < 3; i++) await conn.expect("sim_input");
  conn.send({ type: "sim_snapshot", tick: 41, acked: 1, me: null, others: [], players: 1 });
  await until(() => sim.acked === 1, "the snapshot");
  conn.drop();

  const conn2 = await server.nextConnection();
  assert.equal(conn2.path, "/v1/sims/plane/p-1/ws?subscriber=ann");
  await sleep(20);
  assert.equal(conn2.unread, 0, "nothing is sent before the welcome");
  // Seq 2 was processed by the state before the drop; 3 was not.
  welcome(conn2, 2, "ann");
  assert.deepEqual(await conn2.recv(), { type: "sim_input", seq: 3, input: steer(0.25) });
  await until(() => sim.state.state === "live", "the client is live");
  assert.equal(sim.acked, 2);
  assert.deepEqual(seqs(sim.pending()), [3]);
  assert.equal(sim.sendInput(steer(-1)), 4);
  assert.deepEqual(await conn2.recv(), { type: "sim_input", seq: 4, input: steer(-1) });
  // The server answers the resent one as a duplicate; the next snapshot settles both.
  conn2.send({ type: "sim_ack", seq: 3, tick: 42, dup: true });
  conn2.send({ type: "sim_snapshot", tick: 42, acked: 4, me: { x: 1, y: 1 }, others: [], players: 1 });
  await until(() => sim.acked === 4, "the snapshot after the reconnect");
  assert.deepEqual(sim.pending(), []);
  assert.deepEqual(dropped, []);
  sim.close();
});

test("reconnect anonymous: seqs restart after the new welcome's acked and unreflected inputs are reported dropped, not resent", async () => {
  const { sim, conn } = await joined({ backoff: { initialMs: 1, maxMs: 1 } }, 0, "c1");
  const dropped: { inputs: PendingInput<Steer>[]; reason: string }[] = [];
  sim.on("dropped", (d) => dropped.push(d));
  sim.sendInput(steer(1));
  sim.sendInput(steer(0));
  await conn.expect("sim_input");
  await conn.expect("sim_input");
  conn.send({ type: "sim_snapshot", tick: 41, acked: 1, me: { x: 1, y: 1 }, others: [], players: 1 });
  await until(() => sim.acked === 1, "the snapshot");
  conn.drop();

  const conn2 = await server.nextConnection();
  assert.equal(conn2.path, "/v1/sims/plane/p-1/ws");
  welcome(conn2, 0, "c2");
  await until(() => sim.state.state === "live" && sim.subscriber === "c2", "the new welcome");
  assert.equal(dropped.length, 1);
  assert.deepEqual(dropped[0]!.inputs, [{ seq: 2, input: steer(0) }]);
  assert.deepEqual(sim.pending(), []);
  assert.equal(sim.acked, 0);
  assert.equal(sim.sendInput(steer(0.5)), 1, "a new subscriber's seqs start again");
  assert.deepEqual(await conn2.recv(), { type: "sim_input", seq: 1, input: steer(0.5) }, "the dropped input was not resent");
  sim.close();
});

test("close 4410 (finished) stops the client without reconnecting; so does 4403", async () => {
  for (const code of [4410, 4403]) {
    const { sim, conn } = await joined();
    const before = server.upgrades;
    conn.close(code, code === 4410 ? "the simulation finished" : "forbidden");
    await until(() => sim.state.state === "closed", `the close ${code}`);
    assert.deepEqual(sim.state, { state: "closed", code, reason: code === 4410 ? "the simulation finished" : "forbidden" });
    await assert.rejects(sim.ready(), (e: PylonError) => e.code === "CLOSED" && e.closeCode === code);
    await sleep(40);
    assert.equal(server.upgrades, before, "no new attempt");
  }
});

test("a final snapshot ends the client even when the 4410 close frame is lost", async () => {
  const { sim, conn } = await joined();
  const snaps: SimSnapshot<{ total: number }>[] = [];
  (sim as unknown as SimClient<Steer, { total: number }>).on("snapshot", (s) => snaps.push(s));
  conn.send({ type: "sim_snapshot", tick: 90, acked: 0, final: true, total: 3 });
  await until(() => snaps.length === 1, "the final snapshot");
  assert.deepEqual(snaps[0], { total: 3, tick: 90, acked: 0, final: true });
  const before = server.upgrades;
  conn.drop();
  await until(() => sim.state.state === "closed", "the end");
  await sleep(40);
  assert.equal(server.upgrades, before);
});

test("4429 backs off: each such close in a row waits longer; an ordinary drop retries at the first delay", async () => {
  const { sim, conn } = await joined({ backoff: { initialMs: 10, maxMs: 1000, factor: 2 }, random: () => 1 });
  const waits: number[] = [];
  sim.on("state", (s: SimConnectionState) => {
    if (s.state === "waiting") waits.push(s.delayMs);
  });
  conn.close(4429, "rate limited");
  const conn2 = await server.nextConnection();
  welcome(conn2);
  await until(() => sim.state.state === "live", "live again");
  conn2.close(4429, "rate limited");
  const conn3 = await server.nextConnection();
  welcome(conn3);
  await until(() => sim.state.state === "live", "live a third time");
  conn3.drop();
  const conn4 = await server.nextConnection();
  welcome(conn4);
  await until(() => sim.state.state === "live", "live a fourth time");
  assert.deepEqual(waits, [20, 40, 10]);
  sim.close();
});

test("keepalive: the pylon.keepalive frame after silence (not a message), its ack ignored, the socket dropped after twice as long", async () => {
  const { sim, conn } = await joined({ keepaliveMs: 40 });
  assert.deepEqual(await conn.recv(), { raw: "pylon.keepalive" });
  conn.sendText("pylon.keepalive.ack");
  assert.deepEqual(await conn.recv(), { raw: "pylon.keepalive" }, "the ack counts as a frame, the silence starts again");
  // No answer: the client gives the socket up and connects again.
  const conn2 = await server.nextConnection();
  assert.ok(conn.log.every((m) => m.raw === "pylon.keepalive"), "only keepalive frames were sent");
  welcome(conn2);
  await until(() => sim.state.state === "live", "live again");
  sim.close();
});

test("an unknown message type is ignored; an undecodable frame or a message before the welcome drops the socket", async () => {
  const { sim, conn } = await joined();
  conn.send({ type: "sim_future", x: 1 });
  conn.send({ type: "sim_snapshot", tick: 50, acked: 0, me: null, others: [], players: 0 });
  await until(() => sim.tick === 50, "the snapshot after the unknown message");
  conn.send({ type: "sim_snapshot", tick: -1, acked: 0 });
  const conn2 = await server.nextConnection();
  conn2.send({ type: "sim_snapshot", tick: 51, acked: 0 });
  const conn3 = await server.nextConnection();
  welcome(conn3);
  await until(() => sim.state.state === "live", "live on the third socket");
  sim.close();
});

test("decodeSimServer: a snapshot's own fields beside the stamps; the protocol's examples", () => {
  assert.deepEqual(decodeSimServer('{"type":"sim_snapshot","tick":9,"acked":5,"final":true,"total":40}'), {
    type: "sim_snapshot",
    tick: 9,
    acked: 5,
    final: true,
    view: { total: 40 },
  });
  assert.deepEqual(decodeSimServer('{"type":"sim_ack","seq":3,"tick":5,"dup":true}'), { type: "sim_ack", seq: 3, tick: 5, dup: true });
  assert.deepEqual(
    decodeSimServer('{"type":"sim_err","code":"FORBIDDEN","message":"forbidden: not your turn","seq":4,"reason":"not your turn"}'),
    { type: "sim_err", code: "FORBIDDEN", message: "forbidden: not your turn", seq: 4, reason: "not your turn" },
  );
  assert.throws(() => decodeSimServer('{"type":"sim_ack","seq":"3","tick":5}'), /sim_ack.seq/);
});

// ---- matchmaking -------------------------------------------------------------

const ticket = (status: TicketMsg["status"], extra: Partial<TicketMsg> = {}) => ({
  ticket: "t1-00aa",
  player: "ann",
  status,
  kind: "plane",
  since_ms: 1000,
  until_ms: 61000,
  ...extra,
});

test("matchmake: POSTs the criteria to /v1/match/{kind}/{queue}, listens on the ticket socket, resolves when assigned", async () => {
  http = (r) => (r.method === "POST" ? { status: 200, body: ticket("waiting") } : undefined);
  const seen: string[] = [];
  const before = server.requests.length;
  const match = matchmake({
    url: server.url.replace("ws:", "http:"),
    queue: "lobby",
    criteria: { mode: "duel" },
    token: "tok",
    onTicket: (t) => seen.push(t.status),
  });
  const conn = await server.nextConnection();
  const post = server.requests[before]!;
  assert.deepEqual([post.method, post.path, post.body], ["POST", "/v1/match/duels/lobby", '{"mode":"duel"}']);
  assert.equal(post.headers.authorization, "Bearer tok");
  assert.equal(conn.path, "/v1/match/duels/lobby/ws?ticket=t1-00aa");
  assert.deepEqual(conn.protocols, ["pylon.v1.json", "bearer.tok"]);
  conn.send({ type: "mm_ticket", ...ticket("waiting") });
  conn.send({ type: "mm_ticket", ...ticket("assigned", { sim: "lobby-1", players: ["ann", "bo"] }) });
  conn.close(1000, "ticket assigned");
  assert.deepEqual(await match, { kind: "plane", sim: "lobby-1", players: ["ann", "bo"], ticket: "t1-00aa", player: "ann" });
  assert.deepEqual(seen, ["waiting", "waiting", "assigned"]);
  assert.equal(server.requests.length, before + 1, "no polling while the socket told everything");
});

test("matchmake: without a socket it polls GET …/tickets/{t} and rejects EXPIRED", async () => {
  let polls = 0;
  http = (r) => {
    if (r.method === "POST") return { status: 200, body: ticket("waiting") };
    if (r.method === "GET" && r.path === "/v1/match/ranked/q%201/tickets/t1-00aa") {
      polls++;
      return { status: 200, body: ticket(polls < 3 ? "waiting" : "expired") };
    }
    return { status: 404, body: { error: { code: "NOT_FOUND", message: "no route" } } };
  };
  const err = await matchmake({ url: server.url, queue: "q 1", kind: "ranked", criteria: 1500, WebSocket: null, pollMs: 5 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof MatchError, String(err));
  assert.equal(err.code, "EXPIRED");
  assert.equal(err.ticket?.status, "expired");
  assert.equal(polls, 3);
});

test("matchmake: the queue's refusal rejects with its code and status; an answer already assigned resolves at once", async () => {
  http = () => ({ status: 400, body: { error: { code: "BAD_CRITERIA", message: "the body: missing field `mode`" } } });
  await assert.rejects(
    matchmake({ url: server.url, queue: "lobby", criteria: {}, WebSocket: null }),
    (e: MatchError) => e instanceof MatchError && e.code === "BAD_CRITERIA" && e.status === 400 && /mode/.test(e.message),
  );
  http = () => ({ status: 200, body: ticket("assigned", { sim: "lobby-7", players: ["bo", "ann"], dup: true }) });
  const upgrades = server.upgrades;
  assert.deepEqual(await matchmake({ url: server.url, queue: "lobby", criteria: { mode: "duel" } }), {
    kind: "plane",
    sim: "lobby-7",
    players: ["bo", "ann"],
    ticket: "t1-00aa",
    player: "ann",
  });
  assert.equal(server.upgrades, upgrades, "no socket for a settled ticket");
});

test("matchmake: a socket closed before the ticket settles falls back to polling; aborting leaves the queue", async () => {
  let polls = 0;
  http = (r) => {
    if (r.method === "POST") return { status: 200, body: ticket("waiting") };
    if (r.method === "GET") {
      polls++;
      return { status: 200, body: ticket("waiting") };
    }
    if (r.method === "DELETE") return { status: 200, body: ticket("left") };
    return undefined;
  };
  const abort = new AbortController();
  const before = server.requests.length;
  const match = matchmake({ url: server.url, queue: "lobby", criteria: { mode: "duel" }, pollMs: 5, signal: abort.signal });
  const conn = await server.nextConnection();
  conn.close(1011, "internal");
  await until(() => polls >= 2, "polling after the socket closed");
  abort.abort();
  await assert.rejects(match, (e: MatchError) => e.code === "ABORTED");
  await until(() => server.requests.some((r, i) => i >= before && r.method === "DELETE"), "the DELETE");
  const del = server.requests.slice(before).find((r) => r.method === "DELETE")!;
  assert.equal(del.path, "/v1/match/duels/lobby/tickets/t1-00aa");
});
