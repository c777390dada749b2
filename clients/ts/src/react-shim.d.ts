// Build-time declaration of the two React hooks the `react` entry point
// uses, so the package builds without React installed. It is not emitted:
// the published .d.ts files do not mention React's types.
declare module "react" {
  export function useSyncExternalStore<T>(
    subscribe: (onStoreChange: () => void) => () => void,
    getSnapshot: () => T,
    getServerSnapshot?: () => T,
  ): T;
  export function useMemo<T>(factory: () => T, deps: readonly unknown[]): T;
}
