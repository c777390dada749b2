/**
 * React bindings: `useLiveQuery(client, query)` → `{rows, status, error}`.
 * React (18 or later, for `useSyncExternalStore`) is an optional peer
 * dependency: only this entry point imports it.
 */
import { useMemo, useSyncExternalStore } from "react";
import type { ConnectionState, PylonClient, PylonError, SubStatus } from "./client.js";
import type { Row } from "./protocol.js";
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

/** The client's connection state, kept current. */
export const useConnectionState = createUseConnectionState(react);
