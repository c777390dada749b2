// The demo board: one room = one shard. Cards are a live query kept up to
// date from snap/diff messages by @pylon-workers/client; writes show at once
// (optimistic) and are confirmed by the shard's ack. `?encoding=postcard`
// speaks pylon.v1.postcard (binary frames) instead of JSON.
import { connect } from "/vendor/pylon-client/index.js";

const params = new URLSearchParams(location.search);
const room = (params.get("room") || "lobby").replace(/[^A-Za-z0-9._:-]/g, "-").slice(0, 128) || "lobby";
const me = params.get("name") || `guest-${Math.random().toString(36).slice(2, 6)}`;
document.getElementById("room").textContent = `· ${room}`;

const encoding = params.get("encoding") === "postcard" ? "postcard" : "json";
const client = connect({ url: location.origin, shard: room, encoding });
const $ = (id) => document.getElementById(id);

client.on("state", (s) => {
  $("conn").dataset.state = s.state;
  $("conn").textContent = s.state;
});
client.on("welcome", (w) => {
  $("conn").dataset.encoding = w.encoding;
});
client.on("presence", (members) => {
  $("here").textContent = String(members.size);
});
client.presence({ name: me });

function showError(err) {
  $("error").hidden = false;
  $("error").textContent = `${err.code || "ERROR"}: ${err.message}`;
}

function render(rows, info) {
  $("seq").textContent = info && info.seq != null ? String(info.seq) : "–";
  $("cards").replaceChildren(...rows.map((card) => {
    const li = document.createElement("li");
    li.dataset.id = card.id;
    li.className = card.done ? "done" : "";
    const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: !!card.done });
    box.addEventListener("change", () =>
      client.mutate([{ type: "update", entity: "Card", id: card.id, set: { done: box.checked } }]).catch(showError));
    const title = Object.assign(document.createElement("span"), { className: "title", textContent: card.title });
    const remove = Object.assign(document.createElement("button"), { className: "remove", textContent: "✕", title: "Remove" });
    remove.addEventListener("click", () =>
      client.mutate([{ type: "delete", entity: "Card", id: card.id }]).catch(showError));
    li.append(box, title, remove);
    return li;
  }));
  document.body.dataset.cards = String(rows.length);
}

const cards = client.subscribe({ entity: "Card", order: ["position", "createdAt"], limit: 200 }, render);

$("add").addEventListener("submit", (e) => {
  e.preventDefault();
  const title = $("title").value.trim();
  if (!title) return;
  $("title").value = "";
  const last = cards.rows[cards.rows.length - 1];
  const position = last ? Number(last.position) + 1 : 1;
  client
    .mutate([{ type: "insert", entity: "Card", row: {
      id: crypto.randomUUID(), title, done: false, position,
      createdAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"), author: me,
    } }])
    .catch(showError);
});
