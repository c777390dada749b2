/**
 * `query`, `mutation` and `action`: what a file in `functions/` exports by
 * default.
 *
 * ```ts
 * export default mutation({
 *   args: { title: v.string() },
 *   handler: async (ctx, { title }) => ctx.db.insert("Card", { title }),
 * });
 * ```
 */
import type { ActionCtx, FunctionKind, MutationCtx, QueryCtx } from "./ctx.ts";
import { argsValidator, type ArgsSpec, type InferArgs, type ObjectValidator, type Shape } from "./validators.ts";

const BRAND = Symbol.for("pylon-workers.function");

/** A function as the runtime keeps it. */
export interface FunctionDefinition<K extends FunctionKind = FunctionKind, Args = unknown, Result = unknown> {
  readonly kind: K;
  /** Policies are not applied to its `ctx.db` calls (it acts as the shard itself). */
  readonly trusted: boolean;
  readonly args: ObjectValidator<Shape>;
  // A method, so that any definition fits `FunctionDefinition` (parameters of methods are bivariant).
  handler(ctx: CtxOf<K>, args: Args): Result | Promise<Result>;
}

/** `ctx` for a kind. */
export type CtxOf<K extends FunctionKind> = K extends "query" ? QueryCtx : K extends "mutation" ? MutationCtx : ActionCtx;

/** What `query({...})`, `mutation({...})` and `action({...})` take. */
export interface FunctionOptions<K extends FunctionKind, A extends ArgsSpec, R> {
  /** The arguments, as validators; other keys are refused. Leave out for none. */
  args?: A;
  /**
   * `true`: policies are not applied to this function's `ctx.db` calls,
   * which run as the shard itself. Default `false`: every read and write
   * is checked against the caller's policies, as a client's would be.
   */
  trusted?: boolean;
  handler: (ctx: CtxOf<K>, args: InferArgs<A>) => R;
}

function define<K extends FunctionKind, A extends ArgsSpec, R>(
  kind: K,
  options: FunctionOptions<K, A, R>,
): FunctionDefinition<K, InferArgs<A>, Awaited<R>> {
  if (typeof options?.handler !== "function") throw new TypeError(`${kind}({...}) needs a handler function`);
  const definition = {
    kind,
    trusted: options.trusted === true,
    args: argsValidator(options.args),
    handler: options.handler as FunctionDefinition<K, InferArgs<A>, Awaited<R>>["handler"],
  };
  Object.defineProperty(definition, BRAND, { value: true });
  return Object.freeze(definition);
}

/** A read-only function; it runs inside the shard's turn and may only await `ctx.db`. */
export function query<A extends ArgsSpec = Record<never, never>, R = unknown>(
  options: FunctionOptions<"query", A, R>,
): FunctionDefinition<"query", InferArgs<A>, Awaited<R>> {
  return define("query", options);
}

/** A function whose writes apply all together or not at all, inside the shard's turn; it may only await `ctx.db`. */
export function mutation<A extends ArgsSpec = Record<never, never>, R = unknown>(
  options: FunctionOptions<"mutation", A, R>,
): FunctionDefinition<"mutation", InferArgs<A>, Awaited<R>> {
  return define("mutation", options);
}

/** A function outside the shard's turn: it may do I/O and call queries and mutations by name. */
export function action<A extends ArgsSpec = Record<never, never>, R = unknown>(
  options: FunctionOptions<"action", A, R>,
): FunctionDefinition<"action", InferArgs<A>, Awaited<R>> {
  return define("action", options);
}

/** Whether `value` came from `query`, `mutation` or `action`. */
export function isDefinition(value: unknown): value is FunctionDefinition {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
