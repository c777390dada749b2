// The plane game: one page = one player on a simulation shard of kind
// `plane` (20 Hz, a 100 × 100 plane, each player seeing those within 30
// units). `?id=` picks the shard. With a token (`#token=<jwt>`, kept for
// the tab) the page plays as that user, so the player outlives
// reconnects; without one it plays as its connection, and a reconnect
// brings a new player. Positions are exposed as data attributes
// (`#me[data-x][data-y]`, `#others [data-id][data-x][data-y]`, and on
// `#plane` the welcomes its last drawn snapshot came after) for tests.
import { joinSim, jwtSubject, matchmake } from "/vendor/pylon-client/index.js";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const shardName = (s) => (s || "").replace(/[^A-Za-z0-9._:-]/g, "-").slice(0, 128);

// The token: from the fragment (never sent to the server as part of the
// URL), then out of the address bar and into the tab's storage.
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) {
  sessionStorage.setItem("pylon.plane.token", fromHash);
  history.replaceState(null, "", location.pathname + location.search);
}
const token = sessionStorage.getItem("pylon.plane.token") || undefined;
const user = jwtSubject(token);

let sim;
let shard;
/** The steer the player wants, and the last one the shard took. */
let desired = { x: 0, y: 0 };
let sent;
/** Where a click asked to fly to (the page stops the player there). */
let target;
/** Welcomes of this shard's socket so far: a snapshot drawn is stamped with it. */
let welcomes = 0;

const same = (a, b) => !!a && !!b && a.x === b.x && a.y === b.y;
const fixed = (n) => (Math.round(n * 100) / 100).toString();

function showError(err) {
  $("error").hidden = false;
  $("error").textContent = `${err.code || "ERROR"}: ${err.message}`;
}

/** Sends the desired steer if the socket is live (else it goes after the next welcome). */
function steer(dir) {
  desired = dir;
  if (!sim || sim.state.state !== "live") return;
  try {
    sim.sendInput({ steer: dir });
    sent = dir;
  } catch (e) {
    showError(e);
  }
}

function place(el, x, y) {
  el.setAttribute("cx", fixed(x));
  el.setAttribute("cy", fixed(y));
  el.dataset.x = fixed(x);
  el.dataset.y = fixed(y);
}

function render(s) {
  $("plane").dataset.welcomes = String(welcomes);
  $("tick").textContent = String(s.tick);
  $("players").textContent = String(s.players);
  $("insight").textContent = String(s.others.length);
  const me = $("me");
  me.classList.toggle("off", !s.me);
  $("sight").classList.toggle("off", !s.me);
  me.classList.toggle("pending", sim.pending().length > 0);
  if (s.me) {
    place(me, s.me.x, s.me.y);
    place($("sight"), s.me.x, s.me.y);
  } else {
    delete me.dataset.x;
    delete me.dataset.y;
  }
  $("others").replaceChildren(...s.others.map((o) => {
    const g = document.createElementNS(SVG, "g");
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("r", "2");
    place(dot, o.x, o.y);
    dot.dataset.id = o.id;
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", fixed(o.x));
    label.setAttribute("y", fixed(o.y - 3));
    label.textContent = o.id;
    g.append(dot, label);
    return g;
  }));
  if (target && s.me) autopilot(s.me);
}

/** Flying to a clicked point: stop once there (or past it). */
function autopilot(me) {
  const dx = target.x - me.x;
  const dy = target.y - me.y;
  if (Math.hypot(dx, dy) < 0.75 || dx * desired.x + dy * desired.y <= 0) {
    target = undefined;
    $("target").classList.add("off");
    steer({ x: 0, y: 0 });
  }
}

function flyTo(x, y) {
  const me = $("me").dataset;
  if (me.x === undefined) return;
  const dx = x - Number(me.x);
  const dy = y - Number(me.y);
  const len = Math.hypot(dx, dy);
  if (len < 0.75) return;
  target = { x, y };
  place($("target"), x, y);
  $("target").classList.remove("off");
  steer({ x: dx / len, y: dy / len });
}

function play(id) {
  sim?.close();
  shard = id;
  sent = undefined;
  target = undefined;
  $("shard").textContent = `· ${id}`;
  $("error").hidden = true;
  $("conn").dataset.state = "connecting";
  $("conn").textContent = "connecting";
  sim = joinSim({
    url: location.origin,
    kind: "plane",
    id,
    token,
    subscriber: user,
    // A game should come back quickly: at most 4 s between attempts.
    backoff: { maxMs: 4000 },
  });
  const mine = sim;
  welcomes = 0;
  sim.on("state", (s) => {
    if (sim !== mine) return;
    $("conn").dataset.state = s.state;
    $("conn").textContent = s.state === "closed" ? `closed (${s.reason})` : s.state;
  });
  sim.on("welcome", (w) => {
    $("who").textContent = user ? w.subscriber : `${w.subscriber} (anonymous)`;
    // A player appears with its first input. A named player is still
    // there after a reconnect (its unreflected inputs were resent); an
    // anonymous socket is a new player and joins again.
    if (welcomes === 0 || !user || !same(desired, sent)) steer(desired);
    welcomes++;
  });
  sim.on("snapshot", render);
  sim.on("error", showError);
}

// ---- input ---------------------------------------------------------------

const KEYS = {
  ArrowUp: [0, -1], KeyW: [0, -1], ArrowDown: [0, 1], KeyS: [0, 1],
  ArrowLeft: [-1, 0], KeyA: [-1, 0], ArrowRight: [1, 0], KeyD: [1, 0],
};
const held = new Set();

function steerFromKeys() {
  let x = 0;
  let y = 0;
  for (const k of held) {
    x += KEYS[k][0];
    y += KEYS[k][1];
  }
  const len = Math.hypot(x, y) || 1;
  const dir = { x: x / len, y: y / len };
  if (!same(dir, desired)) steer(dir);
}

addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement) return;
  if (e.code === "Space") {
    e.preventDefault();
    held.clear();
    target = undefined;
    steer({ x: 0, y: 0 });
  } else if (KEYS[e.code] && !held.has(e.code)) {
    e.preventDefault();
    held.add(e.code);
    target = undefined;
    steerFromKeys();
  }
});
addEventListener("keyup", (e) => {
  if (held.delete(e.code)) steerFromKeys();
});
addEventListener("blur", () => {
  if (held.size > 0) {
    held.clear();
    steerFromKeys();
  }
});

for (const b of $("pad").querySelectorAll("button")) {
  b.addEventListener("click", () => {
    target = undefined;
    $("target").classList.add("off");
    steer({ x: Number(b.dataset.dx), y: Number(b.dataset.dy) });
  });
}

$("plane").addEventListener("click", (e) => {
  const box = e.currentTarget.getBoundingClientRect();
  flyTo(((e.clientX - box.left) / box.width) * 100, ((e.clientY - box.top) / box.height) * 100);
});

// ---- matchmaking -----------------------------------------------------------

let searching;
$("match").addEventListener("click", async () => {
  if (searching) {
    searching.abort();
    return;
  }
  searching = new AbortController();
  $("match").textContent = "Cancel";
  $("match-status").textContent = "waiting for another player…";
  try {
    const m = await matchmake({ url: location.origin, queue: "lobby", criteria: { mode: "duel" }, token, signal: searching.signal });
    $("match-status").textContent = `matched with ${m.players.filter((p) => p !== m.player).join(", ") || "yourself"}`;
    history.replaceState(null, "", `?id=${encodeURIComponent(m.sim)}`);
    play(m.sim);
  } catch (e) {
    $("match-status").textContent = e.code === "ABORTED" ? "" : `no match: ${e.code}`;
  } finally {
    searching = undefined;
    $("match").textContent = "Find a match";
  }
});

play(shardName(params.get("id")) || "plane-lobby");
document.body.dataset.ready = "1";
