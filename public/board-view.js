// The board as columns (a small kanban): draws the live cards into one
// section per column and hands the user's clicks to `actions`. It only
// builds DOM; app.js decides what each action sends to the shard.
//
//   renderBoard(document.getElementById("cards"), rows, {
//     done(card, checked) {}, remove(card) {}, move(card, column, position) {}, archiveColumn(column) {},
//     filesOf(card) { return [{ id, name, type, url }]; }, attach(card, file) {},
//   });

/** The columns every board shows, in order; a card without `column` is in the first. */
export const COLUMNS = ["todo", "doing", "done"];

/** The column of a card (as the board's functions read it). */
export const columnOf = (card) => card.column ?? COLUMNS[0];

/** The usual columns, then any other a card names, in the order cards name them. */
export function columnsOf(cards) {
  const names = [...COLUMNS];
  for (const card of cards) if (!names.includes(columnOf(card))) names.push(columnOf(card));
  return names;
}

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const [k, v] of Object.entries(props.data || {})) node.dataset[k] = v;
  node.append(...children);
  return node;
};

/** A small button; `data-action` lets a re-render put the focus back on it. */
function actionButton(action, text, label, onClick, enabled = true) {
  const b = el("button", { type: "button", className: `act ${action}`, textContent: text, title: label, disabled: !enabled, data: { action } });
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

function cardItem(card, at, column, columns, actions) {
  const li = el("li", { className: card.done ? "done" : "", data: { id: card.id, column: column.name } });
  const box = el("input", { type: "checkbox", checked: !!card.done, data: { action: "done" } });
  box.setAttribute("aria-label", `Done: ${card.title}`);
  box.addEventListener("change", () => actions.done(card, box.checked));
  const title = el("span", { className: "title", textContent: card.title });
  // ← and → put the card at the end of the next column.
  const c = columns.indexOf(column);
  const [left, right] = [columns[c - 1], columns[c + 1]];
  const moves = el("span", { className: "moves" },
    actionButton("left", "←", left ? `Move to ${left.name}` : "First column", () => actions.move(card, left.name, left.cards.length), !!left),
    actionButton("up", "↑", "Move up", () => actions.move(card, column.name, at - 1), at > 0),
    actionButton("down", "↓", "Move down", () => actions.move(card, column.name, at + 1), at < column.cards.length - 1),
    actionButton("right", "→", right ? `Move to ${right.name}` : "Last column", () => actions.move(card, right.name, right.cards.length), !!right),
  );
  moves.setAttribute("role", "group");
  moves.setAttribute("aria-label", `Move ${card.title}`);
  const remove = actionButton("remove", "✕", "Remove", () => actions.remove(card));
  li.append(box, title, moves, attachButton(card, actions), remove, fileList(card, actions));
  return li;
}

/** 📎: picks a file and hands it to `actions.attach` (uploaded to R2, docs/files.md). */
function attachButton(card, actions) {
  const input = el("input", { type: "file", className: "file-input", data: { action: "attach-file" } });
  input.setAttribute("aria-label", `Attach a file to ${card.title}`);
  input.addEventListener("change", () => {
    if (input.files.length) actions.attach(card, input.files[0]);
  });
  return el("label", { className: "act attach", title: "Attach a file" }, "📎", input);
}

/** The card's attachments: images as thumbnails, other files as links. */
function fileList(card, actions) {
  const files = actions.filesOf ? actions.filesOf(card) : [];
  if (!files.length) return "";
  return el("ul", { className: "files" }, ...files.map((f) => {
    const label = f.name || f.id;
    const shown = f.type.startsWith("image/") ? el("img", { src: f.url, alt: label, className: "thumb" }) : label;
    return el("li", { data: { file: f.id } }, el("a", { href: f.url, target: "_blank", rel: "noopener" }, shown));
  }));
}

function columnSection(column, columns, actions) {
  const heading = el("h2", { id: `column-${columns.indexOf(column)}`, textContent: column.name });
  const count = el("span", { className: "count", textContent: String(column.cards.length) });
  const archive = actionButton("archive-column", "Archive column", `Archive every card in ${column.name}`,
    () => actions.archiveColumn(column.name), column.cards.length > 0);
  const section = el("section", { className: "column", data: { column: column.name } },
    el("header", {}, heading, count, archive),
    el("ul", {}, ...column.cards.map((card, at) => cardItem(card, at, column, columns, actions))));
  section.setAttribute("aria-labelledby", heading.id);
  return section;
}

/** Where the focus is, as a selector that finds the same control after a re-render. */
function focusKey() {
  const active = document.activeElement;
  const action = active && active.dataset && active.dataset.action;
  if (!action) return null;
  const holder = active.closest("li[data-id], section[data-column]");
  if (!holder) return null;
  const where = holder.dataset.id !== undefined ? `li[data-id="${CSS.escape(holder.dataset.id)}"]` : `section[data-column="${CSS.escape(holder.dataset.column)}"]`;
  return { where, action };
}

/**
 * Draws `cards` (in board order) into `container` as columns. The focus
 * follows the control it was on: a card moved with → keeps its → (or, at
 * the last column, its first enabled button), so a keyboard user can go on.
 */
export function renderBoard(container, cards, actions) {
  const key = focusKey();
  const names = columnsOf(cards);
  const columns = names.map((name) => ({ name, cards: cards.filter((card) => columnOf(card) === name) }));
  container.replaceChildren(...columns.map((column) => columnSection(column, columns, actions)));
  if (key) {
    const holder = container.querySelector(key.where);
    const target = holder && [holder.querySelector(`[data-action="${key.action}"]`), ...holder.querySelectorAll("button, input")]
      .find((b) => b && !b.disabled);
    if (target) target.focus();
  }
  return names;
}
