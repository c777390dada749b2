/**
 * Argument validators, `v.*`, in Pylon's (and Convex's) shape:
 *
 * ```ts
 * const args = v.object({ items: v.array(v.object({ sku: v.id("Item"), qty: v.int() })) });
 * const failure = args.check({ items: [{ sku: "a", qty: "3" }] });
 * formatFailure("args", failure!); // 'args.items[0].qty: expected an integer, got "3"'
 * type Args = Infer<typeof args>;  // { items: { sku: string; qty: number }[] }
 * ```
 *
 * A check allocates nothing when the value is valid: a failure is built
 * only on the way out, each container adding its key.
 */

/** Why a value was refused; `path` lists the keys innermost first. */
export interface Failure {
  readonly path: (string | number)[];
  readonly reason: string;
}

/**
 * A validator of values of type `T`; `Opt` is `true` for `v.optional(...)`,
 * which an object field may omit.
 */
export interface Validator<T, Opt extends boolean = false> {
  readonly kind: string;
  readonly isOptional: Opt;
  /** What it accepts, for messages: "an integer". */
  readonly expected: string;
  /** `undefined` when the value is valid. */
  check(value: unknown): Failure | undefined;
  /** Type only (never set): the validated type. */
  readonly __type?: T;
}

// `any`: a validator of any type, whatever its variance.
type AnyValidator = Validator<any, boolean>;

/** The fields of `v.object({...})`, or the `args` of a function. */
export type Shape = Record<string, AnyValidator>;

/** The type a validator accepts. */
export type Infer<V> = V extends Validator<infer T, boolean> ? T : never;

type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends Validator<unknown, true> ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
type Flatten<T> = { [K in keyof T]: T[K] } & {};

/** The object type of a shape: optional validators make optional fields. */
export type InferShape<S extends Shape> = Flatten<
  { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }
>;

/** `v.object(shape)`: also what `args` becomes. */
export interface ObjectValidator<S extends Shape> extends Validator<InferShape<S>> {
  readonly shape: S;
}

function fail(reason: string): Failure {
  return { path: [], reason };
}

/** A short description of a refused value: `"3"`, `3.5`, `null`, `an object`. */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string": {
      const text = JSON.stringify(value);
      return text.length > 42 ? `${text.slice(0, 40)}…"` : text;
    }
    case "number":
    case "boolean":
      return String(value);
    case "object":
      return "an object";
    default:
      return `a ${typeof value}`;
  }
}

function leaf<T>(kind: string, expected: string, accepts: (value: unknown) => boolean): Validator<T> {
  return {
    kind,
    isOptional: false,
    expected,
    check: (value) => (accepts(value) ? undefined : fail(`expected ${expected}, got ${describe(value)}`)),
  };
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** An RFC 3339 date-time (`2026-12-01T10:00:00Z`, `...T10:00:00.5+02:00`), fields in range. */
export function isDateTime(value: unknown): boolean {
  if (typeof value !== "string") return false;
  const m = RFC3339.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return false;
  // 60: a leap second, which RFC 3339 allows.
  if (hour > 23 || minute > 59 || second > 60) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function objectOf<S extends Shape>(shape: S): ObjectValidator<S> {
  const keys = Object.keys(shape);
  const known = new Set(keys);
  return {
    kind: "object",
    isOptional: false,
    expected: "an object",
    shape,
    check(value) {
      if (!isPlainObject(value)) return fail(`expected an object, got ${describe(value)}`);
      for (const key of keys) {
        const field = shape[key] as AnyValidator;
        const item = value[key];
        if (item === undefined) {
          if (field.isOptional) continue;
          const missing = fail(`missing, expected ${field.expected}`);
          missing.path.push(key);
          return missing;
        }
        const failure = field.check(item);
        if (failure) {
          failure.path.push(key);
          return failure;
        }
      }
      for (const key in value) {
        if (!known.has(key) && Object.hasOwn(value, key)) {
          const extra = fail("unknown field");
          extra.path.push(key);
          return extra;
        }
      }
      return undefined;
    },
  };
}

/** Any JSON value. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export const v = {
  /** A string. */
  string: (): Validator<string> => leaf("string", "a string", (x) => typeof x === "string"),
  /** A safe integer (|n| <= 2^53 - 1). */
  int: (): Validator<number> => leaf("int", "an integer", (x) => Number.isSafeInteger(x)),
  /** A finite number. */
  float: (): Validator<number> => leaf("float", "a number", (x) => typeof x === "number" && Number.isFinite(x)),
  /** `true` or `false`. */
  boolean: (): Validator<boolean> => leaf("boolean", "a boolean", (x) => typeof x === "boolean"),
  /** An RFC 3339 date-time string (the engine stores `YYYY-MM-DDTHH:MM:SS[.f]Z`). */
  datetime: (): Validator<string> => leaf("datetime", "an RFC 3339 date-time string", isDateTime),
  /** A row id of `entity`: a non-empty string. */
  id: (entity: string): Validator<string> =>
    leaf("id", `an id of ${entity} (a non-empty string)`, (x) => typeof x === "string" && x.length > 0),
  /** `null`. */
  null: (): Validator<null> => leaf("null", "null", (x) => x === null),
  /** Anything (JSON). */
  any: (): Validator<Json> => ({ kind: "any", isOptional: false, expected: "anything", check: () => undefined }),
  /** Exactly `value`. */
  literal: <const T extends string | number | boolean | null>(value: T): Validator<T> =>
    leaf("literal", JSON.stringify(value), (x) => x === value),
  /** A field that may be left out (or `undefined`); elsewhere, `undefined` passes. */
  optional: <T>(inner: Validator<T, boolean>): Validator<T | undefined, true> => ({
    kind: "optional",
    isOptional: true,
    expected: inner.expected,
    check: (value) => (value === undefined ? undefined : inner.check(value)),
  }),
  /** An array whose every item passes `item`. */
  array: <T>(item: Validator<T, boolean>): Validator<T[]> => ({
    kind: "array",
    isOptional: false,
    expected: "an array",
    check(value) {
      if (!Array.isArray(value)) return fail(`expected an array, got ${describe(value)}`);
      for (let i = 0; i < value.length; i++) {
        const failure = item.check(value[i]);
        if (failure) {
          failure.path.push(i);
          return failure;
        }
      }
      return undefined;
    },
  }),
  /** An object with exactly these fields (optional ones may be left out; others are refused). */
  object: objectOf,
  /** A value that passes one of `members`. */
  union: <const M extends AnyValidator[]>(...members: M): Validator<Infer<M[number]>> => {
    const expected = members.map((m) => m.expected).join(" or ");
    return {
      kind: "union",
      isOptional: false,
      expected,
      check: (value) =>
        members.some((m) => m.check(value) === undefined) ? undefined : fail(`expected ${expected}, got ${describe(value)}`),
    };
  },
};

/** What a function's `args` may be: a shape (`{ a: v.string() }`) or `v.object(...)`. */
export type ArgsSpec = Shape | ObjectValidator<Shape>;

/** The handler's `args` type for an `args` spec. */
export type InferArgs<A> = A extends ObjectValidator<infer S> ? InferShape<S> : A extends Shape ? InferShape<A> : never;

/** `args` as one object validator (a shape is wrapped, `v.object` kept). */
export function argsValidator(args: ArgsSpec | undefined): ObjectValidator<Shape> {
  if (args === undefined) return objectOf({});
  if (isObjectValidator(args)) return args;
  for (const [key, field] of Object.entries(args)) {
    if (!isValidator(field)) throw new TypeError(`args.${key} is not a validator (use v.string(), v.int(), ...)`);
  }
  return objectOf(args);
}

function isValidator(x: unknown): x is AnyValidator {
  return isPlainObject(x) && typeof x.check === "function" && typeof x.kind === "string";
}

function isObjectValidator(x: unknown): x is ObjectValidator<Shape> {
  return isValidator(x) && x.kind === "object" && isPlainObject((x as { shape?: unknown }).shape);
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `args.items[2].qty: expected an integer, got "3"`. */
export function formatFailure(root: string, failure: Failure): string {
  let at = root;
  for (let i = failure.path.length - 1; i >= 0; i--) {
    const key = failure.path[i] as string | number;
    if (typeof key === "number") at += `[${key}]`;
    else if (IDENTIFIER.test(key)) at += `.${key}`;
    else at += `[${JSON.stringify(key)}]`;
  }
  return `${at}: ${failure.reason}`;
}
