/**
 * The I/O rule, part (a): while a query or mutation runs, the I/O entry
 * points of the global scope (`fetch`, `setTimeout`, `setInterval`,
 * `scheduler.wait`, `caches`, `new WebSocket`; `connect` from
 * `cloudflare:sockets` through the build's shim) throw `MUTATION_IO`
 * instead of starting anything, because the shard holds its turn for the
 * call and must not let other events in.
 *
 * "Made by that call" is decided by AsyncLocalStorage: `run(call, fn)`
 * ties `call` to `fn` and to every continuation it schedules (awaits,
 * `.then`), and to nothing else, so other requests in the same isolate
 * are never refused, not even while a call is in flight.
 *
 * The wrappers are installed once per global scope (shared through a
 * `Symbol.for` key, so two copies of the runtime do not wrap twice) and
 * cost one `getStore()` outside calls. Part (b), the race against a
 * macrotask, is in run.ts and uses the timers saved here.
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** What the guard needs of a call (call.ts). */
export interface GuardedCall {
  readonly refusesIo: boolean;
  ioError(what: string): Error;
}

export interface IoGuard {
  /** Runs `fn` as `call`: I/O it starts (now or in its continuations) is checked. */
  run<R>(call: GuardedCall, fn: () => R): R;
  /** Throws the current call's error when it refuses I/O. */
  check(what: string): void;
  /** The global `setTimeout` / `clearTimeout` from before the guard wrapped them. */
  readonly setTimeout: typeof setTimeout;
  readonly clearTimeout: typeof clearTimeout;
}

const KEY = Symbol.for("pylon-workers.functions.io-guard");

/** The guard of this global scope, installed on first use. */
export function ioGuard(): IoGuard {
  const scope = globalThis as unknown as Record<symbol, IoGuard | undefined>;
  let guard = scope[KEY];
  if (guard === undefined) {
    guard = installGuard();
    Object.defineProperty(globalThis, KEY, { value: guard });
  }
  return guard;
}

/** `fn` with the I/O check in front: for `connect` from `cloudflare:sockets`. */
export function guardIoFunction<F extends (...args: never[]) => unknown>(what: string, fn: F): F {
  const guard = ioGuard();
  return function (this: unknown, ...args: Parameters<F>) {
    guard.check(what);
    return Reflect.apply(fn, this, args);
  } as unknown as F;
}

type Scope = Record<string, unknown>;

function installGuard(): IoGuard {
  const storage = new AsyncLocalStorage<GuardedCall>();
  const scope = globalThis as unknown as Scope;
  const guard: IoGuard = {
    run: (call, fn) => storage.run(call, fn),
    check(what) {
      const call = storage.getStore();
      if (call !== undefined && call.refusesIo) throw call.ioError(what);
    },
    setTimeout: scope.setTimeout as typeof setTimeout,
    clearTimeout: scope.clearTimeout as typeof clearTimeout,
  };
  wrapFunction(scope, "fetch", "fetch", guard);
  wrapFunction(scope, "setTimeout", "setTimeout", guard);
  wrapFunction(scope, "setInterval", "setInterval", guard);
  const scheduler = scope.scheduler;
  if (typeof scheduler === "object" && scheduler !== null) wrapFunction(scheduler as Scope, "wait", "scheduler.wait", guard);
  wrapGetter(scope, "caches", guard);
  wrapConstructor(scope, "WebSocket", "new WebSocket", guard);
  return guard;
}

// Each wrapper leaves the platform object untouched and is skipped where
// the platform lacks it (Node has no `caches`; workerd's `fetch` and
// `WebSocket` live on the global scope's prototype: assigning shadows them).
function wrapFunction(owner: Scope, name: string, what: string, guard: IoGuard): void {
  const original = owner[name];
  if (typeof original !== "function") return;
  const wrapped = function (this: unknown, ...args: unknown[]) {
    guard.check(what);
    return Reflect.apply(original, owner, args);
  };
  Object.defineProperty(wrapped, "name", { value: name });
  try {
    owner[name] = wrapped;
  } catch {
    // Not writable here: this entry point stays unguarded (part (b) still holds).
  }
}

function wrapGetter(owner: Scope, name: string, guard: IoGuard): void {
  const found = Object.getOwnPropertyDescriptor(owner, name);
  if (found === undefined || !found.configurable) return;
  const read = found.get ? () => found.get?.call(owner) : () => found.value;
  Object.defineProperty(owner, name, {
    configurable: true,
    enumerable: found.enumerable ?? false,
    get() {
      guard.check(name);
      return read();
    },
    set(value: unknown) {
      Object.defineProperty(owner, name, { configurable: true, enumerable: found.enumerable ?? false, writable: true, value });
    },
  });
}

function wrapConstructor(owner: Scope, name: string, what: string, guard: IoGuard): void {
  const original = owner[name];
  if (typeof original !== "function") return;
  const proxy: object = new Proxy(original, {
    construct(target, args, newTarget) {
      guard.check(what);
      return Reflect.construct(target, args, newTarget === proxy ? target : newTarget);
    },
  });
  try {
    owner[name] = proxy;
  } catch {
    // As in wrapFunction.
  }
}
