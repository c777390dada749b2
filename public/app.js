// The demo board: one room = one shard, shown as a small kanban (columns
// todo / doing / done, and any other a card names). Cards are a live query
// kept up to date from snap/diff messages by @pylon-workers/client. The
// board's rules run on the server as functions (examples/board/functions):
// adding a card (`addCardChecked`, which checks the title), moving one
// (`moveCard`, which renumbers the columns), archiving a column
// (`archiveColumn`) or the done cards (`archiveDone`, a Rust function); the
// summary line is the query function `boardSummary`, kept live with
// `watch`. Ticking and removing a card are plain writes, shown at once
// (optimistic) and confirmed by the shard's ack. `?encoding=postcard`
// speaks pylon.v1.postcard (binary frames) instead of JSON.
import { connect } from "/vendor/pylon-client/index.js";
import { COLUMNS, renderBoard } from "/board-view.js";

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

/** A failure as the user reads it: a server function's own code (EMPTY_TITLE, …) and message, else the protocol's. */
function explain(err) {
  if (err.appCode) return { code: err.appCode, message: err.message.slice(err.appCode.length + 1).trim() };
  return { code: err.code || "ERROR", message: err.message };
}

function showError(err) {
  const { code, message } = explain(err);
  $("error").hidden = false;
  $("error").dataset.code = code;
  $("error").textContent = `${code}: ${message}`;
}

/** The add form's own error, next to it (the input points at it with aria-describedby). */
function showAddError(err) {
  const { code, message } = explain(err);
  $("add-error").hidden = false;
  $("add-error").dataset.code = code;
  $("add-error").textContent = `${message} (${code})`;
  $("title").setAttribute("aria-invalid", "true");
}

function clearAddError() {
  $("add-error").hidden = true;
  $("add-error").textContent = "";
  delete $("add-error").dataset.code;
  $("title").removeAttribute("aria-invalid");
}

const actions = {
  done: (card, checked) =>
    client.mutate([{ type: "update", entity: "Card", id: card.id, set: { done: checked } }]).catch(showError),
  remove: (card) => client.mutate([{ type: "delete", entity: "Card", id: card.id }]).catch(showError),
  move: (card, column, position) => client.call("moveCard", { cardId: card.id, column, position }).catch(showError),
  archiveColumn: (column) => client.call("archiveColumn", { column }).catch(showError),
  filesOf: (card) => attachments.filter((a) => a.row === card.id).map((a) => ({ ...a, url: fileUrl(a.id) })),
  attach: (card, file) => upload(card, file).catch(showError),
};

// Attachments (docs/files.md): the bytes go to R2 through the Worker, and
// each file is an Attachment row in this room's shard, so this live query
// shows a file on every open board once its upload is complete.
let attachments = [];
let shown = { rows: [], info: null };
const fileUrl = (id) => `/v1/files/${encodeURIComponent(room)}/${encodeURIComponent(id)}`;

async function upload(card, file) {
  const id = `f-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const query = new URLSearchParams({ row: card.id, name: file.name.slice(0, 255) || id });
  const r = await fetch(`${fileUrl(id)}?${query}`, {
    method: "PUT", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file,
  });
  if (!r.ok) {
    const { error } = await r.json().catch(() => ({ error: {} }));
    throw Object.assign(new Error(error.message || `upload failed (${r.status})`), { code: error.code || String(r.status) });
  }
}

/** The add form's column choices: the board's columns, keeping the one chosen. */
function fillColumnChoice(names) {
  const select = $("column");
  const chosen = select.value || COLUMNS[0];
  if ([...select.options].map((o) => o.value).join("\n") === names.join("\n")) return;
  select.replaceChildren(...names.map((name) => new Option(name, name, false, name === chosen)));
}

function render(rows, info) {
  shown = { rows, info };
  $("seq").textContent = info && info.seq != null ? String(info.seq) : "–";
  fillColumnChoice(renderBoard($("cards"), rows, actions));
  $("archive-done").disabled = !rows.some((card) => card.done);
  document.body.dataset.cards = String(rows.length);
}

// Archived cards stay in storage; the board leaves them out (`$ne` also
// matches cards that have no `archived` at all).
client.subscribe({ entity: "Card", where: { archived: { $ne: true } }, order: ["position", "createdAt"], limit: 200 }, render);
client.subscribe({ entity: "Attachment", order: ["createdAt"], limit: 500 }, (rows) => {
  attachments = rows;
  render(shown.rows, shown.info);
});

function renderSummary(summary) {
  const line = $("summary");
  // The usual columns first, as on the board.
  const rank = (name) => (COLUMNS.includes(name) ? COLUMNS.indexOf(name) : COLUMNS.length);
  const counts = Object.entries(summary.columns).sort(([a], [b]) => rank(a) - rank(b));
  const columns = counts.map(([name, c]) => `${name} ${c.cards}`);
  const total = `${summary.total}${summary.capped ? "+" : ""}`;
  line.textContent = [`${total} ${summary.total === 1 ? "card" : "cards"}`, `${summary.done} done`, ...columns].join(" · ");
  line.dataset.total = String(summary.total);
  line.dataset.done = String(summary.done);
  line.dataset.columns = JSON.stringify(Object.fromEntries(counts.map(([name, c]) => [name, c.cards])));
}

client.watch("boardSummary", {}, renderSummary, (err) => {
  $("summary").textContent = `summary unavailable (${explain(err).code})`;
});

$("archive-done").addEventListener("click", () => client.call("archiveDone", {}).catch(showError));

$("title").addEventListener("input", clearAddError);
$("add").addEventListener("submit", async (e) => {
  e.preventDefault();
  // The title's rules (not empty, at most 200 characters) are the
  // server's: addCardChecked answers EMPTY_TITLE or TITLE_TOO_LONG.
  const input = $("title");
  const title = input.value;
  input.value = "";
  try {
    await client.call("addCardChecked", { title, column: $("column").value || COLUMNS[0] });
    clearAddError();
  } catch (err) {
    if (input.value === "") input.value = title;
    showAddError(err);
  }
});
