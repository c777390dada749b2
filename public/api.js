// A viewer of this Worker's OpenAPI document (docs/openapi.md): it reads
// /v1/openapi.json from the same origin and lists every operation by tag,
// with who may call it, its parameters, body and answers, then the
// schemas. No library and no other origin: the page works under the
// demo's CSP (public/_headers) and offline. Text only (no innerHTML), so
// nothing in the document can run as markup.

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "data") for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = dv;
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined && c !== "") node.append(c);
  return node;
}

/** `#/components/parameters/after` → the object it names. */
function resolve(doc, item) {
  if (!item || typeof item.$ref !== "string") return item;
  return item.$ref.replace(/^#\//, "").split("/").reduce((at, key) => (at ? at[key] : undefined), doc) ?? item;
}

/** A schema in a few words: its `$ref` name, type, or a compact JSON. */
function schemaName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array") return `${schemaName(schema.items)}[]`;
  if (schema.oneOf || schema.anyOf) return (schema.oneOf || schema.anyOf).map(schemaName).join(" | ");
  return Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "object";
}

function bodyOf(content) {
  if (!content) return "";
  return Object.entries(content).map(([type, m]) => `${type}: ${schemaName(m.schema)}`).join("; ");
}

function operation(doc, path, method, op, shared) {
  const params = [...shared, ...(op.parameters || [])].map((p) => resolve(doc, p));
  const rows = params.map((p) => el("tr", {},
    el("td", {}, el("code", { textContent: p.name })), el("td", { textContent: p.in }),
    el("td", { textContent: schemaName(p.schema) + (p.required ? " (required)" : "") }),
    el("td", { textContent: p.description || "" })));
  const body = resolve(doc, op.requestBody);
  const answers = Object.entries(op.responses || {}).map(([code, r]) => {
    const answer = resolve(doc, r);
    return el("li", {}, el("code", { textContent: code }), ` ${answer.description || ""} `,
      el("span", { className: "api-schema", textContent: bodyOf(answer.content) }));
  });
  return el("details", { className: "api-op", id: op.operationId || `${method}-${path}`, data: { method } },
    el("summary", {}, el("span", { className: "api-method", textContent: method.toUpperCase() }), " ",
      el("code", { className: "api-path", textContent: path }), " ", op.summary || ""),
    op.description ? el("p", { textContent: op.description }) : null,
    rows.length ? el("table", {}, el("thead", {}, el("tr", {}, ...["name", "in", "type", ""].map((h) => el("th", { textContent: h })))),
      el("tbody", {}, ...rows)) : null,
    body ? el("p", {}, "Body: ", el("span", { className: "api-schema", textContent: bodyOf(body.content) })) : null,
    el("ul", { className: "api-answers" }, ...answers));
}

function render(doc) {
  $("api-title").textContent = doc.info?.title || "API";
  $("api-version").textContent = doc.info?.version || "";
  $("api-openapi").textContent = doc.openapi || "";
  const byTag = new Map((doc.tags || []).map((t) => [t.name, { description: t.description, ops: [] }]));
  let count = 0;
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of ["get", "put", "post", "delete", "patch", "head", "options"]) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, { description: "", ops: [] });
      byTag.get(tag).ops.push(operation(doc, path, method, op, item.parameters || []));
      count++;
    }
  }
  $("api-count").textContent = String(count);
  for (const [tag, { description, ops }] of byTag) {
    if (!ops.length) continue;
    const id = `tag-${tag.replace(/[^a-z0-9]+/gi, "-")}`;
    $("api-tags").append(el("a", { href: `#${id}`, textContent: tag }), " ");
    $("api-ops").append(el("section", { id }, el("h2", { textContent: tag }),
      description ? el("p", { className: "hint", textContent: description }) : null, ...ops));
  }
  for (const [name, schema] of Object.entries(doc.components?.schemas || {})) {
    $("api-schemas").append(el("details", { className: "api-def", id: `schema-${name}` },
      el("summary", {}, el("code", { textContent: name })),
      el("pre", { textContent: JSON.stringify(schema, null, 2) })));
  }
}

fetch("/v1/openapi.json", { headers: { Accept: "application/json" } })
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`GET /v1/openapi.json: ${r.status}`))))
  .then(render)
  .catch((e) => {
    $("api-error").hidden = false;
    $("api-error").textContent = String(e.message || e);
  });
