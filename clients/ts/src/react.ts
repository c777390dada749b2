/**
 * React bindings: `useLiveQuery(client, query)` → `{rows, status, error}`,
 * `useQueryFn(client, name, args)` → `{value, error, loading}`.
 * React (18 or later, for `useSyncExternalStore`) is an optional peer
 * dependency: only this entry point imports it.
 */
import { useMemo, useSyncExternalStore } from "react";
import type { ConnectionState, PylonClient, PylonError, SubStatus } from "./client.js";
import type { Json, Row } from "./protocol.js";
import type { Query } from "./query.js";

/** What `useLiveQuery` returns. `status` is `"idle"` while there is no client. */
export interface LiveQueryState {
  rows: readonly Row[];
  status: SubStatus | "idle";
  error: PylonError | undefined;
  /** The seq the server's part of the rows reflects. */
  seq: number | undefined;
  /** Whether unconfirmed local writes are shown in `rows`. */
  optimistic: boolean;
}

/** An external store (for `useSyncExternalStore`) over one live query. */
export interface LiveQueryStore {
  subscribe(onStoreChange: () => void): () => void;
  getSnapshot(): LiveQueryState;
}

const EMPTY: readonly Row[] = Object.freeze([]);
const IDLE: LiveQueryState = Object.freeze({ rows: EMPTY, status: "idle", error: undefined, seq: undefined, optimistic: false });

/**
 * A store that subscribes to `query` while it has listeners and unsubscribes
 * when the last one leaves. Snapshots are immutable and change identity
 * only when something changed.
 */
export function liveQueryStore(client: PylonClient | null | undefined, query: Query): LiveQueryStore {
  if (!client) return { subscribe: () => () => {}, getSnapshot: () => IDLE };
  let state: LiveQueryState = { rows: EMPTY, status: "pending", error: undefined, seq: undefined, optimistic: false };
  const listeners = new Set<() => void>();
  let unsubscribe: (() => void) | undefined;
  return {
    subscribe(onStoreChange) {
      listeners.add(onStoreChange);
      if (!unsubscribe) {
        const sub = client.subscribe(query, (rows, info) => {
          state = { rows, status: info.status, error: info.error, seq: info.seq, optimistic: info.optimistic };
          for (const l of [...listeners]) l();
        });
        unsubscribe = () => sub.unsubscribe();
      }
      return () => {
        listeners.delete(onStoreChange);
        if (listeners.size === 0 && unsubscribe) {
          unsubscribe();
          unsubscribe = undefined;
        }
      };
    },
    getSnapshot: () => state,
  };
}

/** What `useQueryFn` returns. `loading` until the first value or error (false while there is no client). */
export interface QueryFnState {
  /** The function's latest result; undefined before the first (an error keeps the last one). */
  value: Json | undefined;
  error: PylonError | undefined;
  loading: boolean;
  /** The seq of `value`. */
  seq: number | undefined;
}

/** An external store (for `useSyncExternalStore`) over one watched query function. */
export interface QueryFnStore {
  subscribe(onStoreChange: () => void): () => void;
  getSnapshot(): QueryFnState;
}

const NO_CLIENT: QueryFnState = Object.freeze({ value: undefined, error: undefined, loading: false, seq: undefined });

/**
 * A store that watches query function `name` with `args` while it has
 * listeners and closes the watch when the last one leaves. Snapshots are
 * immutable and change identity only when something changed.
 */
export function queryFnStore(client: PylonClient | null | undefined, name: string, args: Json): QueryFnStore {
  if (!client) return { subscribe: () => () => {}, getSnapshot: () => NO_CLIENT };
  let state: QueryFnState = { value: undefined, error: undefined, loading: true, seq: undefined };
  const listeners = new Set<() => void>();
  const set = (next: QueryFnState) => {
    state = next;
    for (const l of [...listeners]) l();
  };
  let close: (() => void) | undefined;
  return {
    subscribe(onStoreChange) {
      listeners.add(onStoreChange);
      if (!close) {
        try {
          const w = client.watch(
            name,
            args,
            (value, seq) => set({ value, error: undefined, loading: false, seq }),
            (error) => set({ ...state, error, loading: false }),
          );
          close = () => w.close();
        } catch (e) {
          // The client is closed: nothing to watch.
          state = { ...state, error: e as PylonError, loading: false };
        }
      }
      return () => {
        listeners.delete(onStoreChange);
        if (listeners.size === 0 && close) {
          close();
          close = undefined;
        }
      };
    },
    getSnapshot: () => state,
  };
}

/** JSON with object keys sorted, so that equal arguments written in another order are one key. */
export function stableJson(v: unknown): string {
  return JSON.stringify(v ?? null, (_k, x: unknown) =>
    x !== null && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]]))
      : x,
  );
}

/** The two hooks the bindings need; React's own, or a compatible library's. */
export interface Hooks {
  useSyncExternalStore<T>(subscribe: (onStoreChange: () => void) => () => void, getSnapshot: () => T, getServerSnapshot?: () => T): T;
  useMemo<T>(factory: () => T, deps: readonly unknown[]): T;
}

/**
 * Makes `useLiveQuery` from a given set of hooks (e.g. `preact/compat`).
 * The query is compared by value (its JSON), so an inline object literal
 * does not resubscribe on every render.
 */
export function createUseLiveQuery(hooks: Hooks): (client: PylonClient | null | undefined, query: Query) => LiveQueryState {
  return (client, query) => {
    const key = JSON.stringify(query);
    const store = hooks.useMemo(() => liveQueryStore(client, JSON.parse(key) as Query), [client, key]);
    return hooks.useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  };
}

/**
 * Makes `useQueryFn` from a given set of hooks. The arguments are compared
 * by their JSON with sorted keys, so an inline object literal does not
 * watch again on every render; another name or other arguments do.
 */
export function createUseQueryFn(hooks: Hooks): (client: PylonClient | null | undefined, name: string, args?: Json) => QueryFnState {
  return (client, name, args = null) => {
    const key = stableJson(args);
    const store = hooks.useMemo(() => queryFnStore(client, name, JSON.parse(key) as Json), [client, name, key]);
    return hooks.useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  };
}

/** Makes `useConnectionState` from a given set of hooks. */
export function createUseConnectionState(hooks: Hooks): (client: PylonClient | null | undefined) => ConnectionState | undefined {
  return (client) => {
    const store = hooks.useMemo(
      () => ({
        subscribe: (cb: () => void) => (client ? client.on("state", cb) : () => {}),
        getSnapshot: () => client?.state,
      }),
      [client],
    );
    return hooks.useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  };
}

const react: Hooks = { useMemo, useSyncExternalStore };

/** The rows of a live query, kept current: `{rows, status, error, seq, optimistic}`. */
export const useLiveQuery = createUseLiveQuery(react);

/** A query function's result, kept current by a watch: `{value, error, loading, seq}`. */
export const useQueryFn = createUseQueryFn(react);

/** The client's connection state, kept current. */
export const useConnectionState = createUseConnectionState(react);
