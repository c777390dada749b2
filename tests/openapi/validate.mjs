// Validates an OpenAPI 3.1 document, and optionally answers against its
// schemas:
//
//   node tests/openapi/validate.mjs DOCUMENT.json [SchemaName=ANSWER.json ...]
//
// 1. The document against the OpenAPI 3.1 schema, every internal `$ref`
//    resolved (@seriousme/openapi-schema-validator).
// 2. Every schema in it (components, parameters, bodies, answers) compiles
//    as JSON Schema 2020-12 under ajv's strict mode: the OpenAPI schema only
//    checks that a schema is an object, not that its keywords, types,
//    formats and patterns mean something.
// 3. What neither checks: operation ids are unique, and every `{name}` of a
//    path is a declared path parameter of each of its operations.
// 4. Each `SchemaName=FILE`: the JSON in FILE is valid against
//    `#/components/schemas/SchemaName` (a real answer fits its description).
//
// Prints what failed and exits 1; prints a summary and exits 0 otherwise.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";

const [file, ...answers] = process.argv.slice(2);
if (!file) {
  console.error("usage: node tests/openapi/validate.mjs DOCUMENT.json [SchemaName=ANSWER.json ...]");
  process.exit(2);
}

const problems = [];
const doc = JSON.parse(readFileSync(file, "utf8"));

// 1. The OpenAPI schema, and references.
const validator = new Validator();
const result = await validator.validate(structuredClone(doc));
if (!result.valid) {
  problems.push(`not a valid OpenAPI document: ${JSON.stringify(result.errors, null, 2)}`);
} else if (validator.version !== "3.1") {
  problems.push(`OpenAPI version ${validator.version}, expected 3.1`);
}

// 2. Every schema compiles. Their `#/components/schemas/X` references are
// rewritten to `#/$defs/X` of one root schema holding them all.
const COMPONENT = "#/components/schemas/";
const rewrite = (v) => {
  if (Array.isArray(v)) return v.map(rewrite);
  if (v === null || typeof v !== "object") return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    out[k] = k === "$ref" && typeof x === "string" && x.startsWith(COMPONENT) ? `#/$defs/${x.slice(COMPONENT.length)}` : rewrite(x);
  }
  return out;
};
const defs = {};
for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) defs[name] = rewrite(schema);
const inline = [];
for (const [name, p] of Object.entries(doc.components?.parameters ?? {})) {
  if (p.schema) inline.push([`parameter ${name}`, p.schema]);
}
for (const [name, r] of Object.entries(doc.components?.responses ?? {})) {
  for (const [type, media] of Object.entries(r.content ?? {})) {
    if (media.schema) inline.push([`response ${name} ${type}`, media.schema]);
  }
}
for (const [path, item] of Object.entries(doc.paths ?? {})) {
  for (const [method, op] of Object.entries(item)) {
    const bodies = [op.requestBody, ...Object.values(op.responses ?? {})];
    for (const b of bodies) {
      for (const [type, media] of Object.entries(b?.content ?? {})) {
        if (media.schema) inline.push([`${method} ${path} ${type}`, media.schema]);
      }
    }
  }
}
const where = {};
inline.forEach(([at, schema], i) => {
  defs[`inline.${i}`] = rewrite(schema);
  where[`inline.${i}`] = at;
});
const OPTIONS = {
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  allErrors: true,
  // Known but not checked here: OpenAPI's own formats.
  formats: { int64: true, double: true, "date-time": true },
};
// OpenAPI's vocabulary and ours: annotations, not assertions.
const VOCABULARY = ["discriminator", "xml", "externalDocs", "example", "x-pylon-entity"];
const newAjv = (more = {}) => new Ajv2020({ ...OPTIONS, ...more }).addVocabulary(VOCABULARY);
const ajv = newAjv();
const names = Object.keys(defs);
const shown = (n) => where[n] ?? n;
// Each schema against the 2020-12 meta-schema, on its own, to name the bad
// ones; then all of them compiled together (strict mode, references).
const invalid = names.filter((n) => {
  if (ajv.validateSchema(defs[n])) return false;
  problems.push(`schema ${shown(n)} is not JSON Schema 2020-12: ${ajv.errorsText(ajv.errors)}`);
  return true;
});
let validate;
if (invalid.length === 0) {
  try {
    validate = ajv.compile({ $defs: defs, anyOf: names.map((n) => ({ $ref: `#/$defs/${n}` })) });
  } catch (e) {
    // Which: each compiled on its own with what it references.
    const failing = names.filter((n) => {
      try {
        newAjv({ validateSchema: false }).compile({ $defs: defs, $ref: `#/$defs/${n}` });
        return false;
      } catch {
        return true;
      }
    });
    problems.push(`schemas do not compile as JSON Schema 2020-12: ${e.message} (in: ${failing.slice(0, 8).map(shown).join("; ")}${failing.length > 8 ? "; ..." : ""})`);
  }
}

// 3. Operation ids and path parameters.
const ids = new Map();
const resolve = (p) => (p.$ref ? p.$ref.slice(2).split("/").reduce((o, k) => o?.[k], doc) : p);
for (const [path, item] of Object.entries(doc.paths ?? {})) {
  const placeholders = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
  for (const [method, op] of Object.entries(item)) {
    if (!op.operationId) problems.push(`${method} ${path}: no operationId`);
    else if (ids.has(op.operationId)) problems.push(`operationId ${op.operationId}: ${ids.get(op.operationId)} and ${method} ${path}`);
    else ids.set(op.operationId, `${method} ${path}`);
    const declared = (op.parameters ?? []).map(resolve).filter((p) => p?.in === "path").map((p) => p.name);
    for (const name of placeholders) {
      if (!declared.includes(name)) problems.push(`${method} ${path}: path parameter ${name} is not declared`);
    }
    for (const name of declared) {
      if (!placeholders.includes(name)) problems.push(`${method} ${path}: parameter ${name} is not in the path`);
    }
  }
}

// 4. Answers against their schemas.
for (const arg of answers) {
  const eq = arg.indexOf("=");
  const [name, answerFile] = [arg.slice(0, eq), arg.slice(eq + 1)];
  if (eq < 1 || !defs[name]) {
    problems.push(`${arg}: expected SchemaName=FILE with a schema of the document`);
    continue;
  }
  if (!validate) break;
  const check = ajv.compile({ $defs: defs, $ref: `#/$defs/${name}` });
  const answer = JSON.parse(readFileSync(answerFile, "utf8"));
  if (!check(answer)) problems.push(`${answerFile} does not fit ${name}: ${ajv.errorsText(check.errors)}\n${JSON.stringify(answer)}`);
}

if (problems.length > 0) {
  for (const p of problems) console.error(`openapi: ${p}`);
  process.exit(1);
}
const operations = [...ids.keys()].length;
console.log(`openapi: valid ${validator.version}: ${operations} operations, ${names.length} schemas compiled, ${answers.length} answers fit`);
