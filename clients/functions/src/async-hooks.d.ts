// Build-time declaration of the one Node API the runtime uses, so the
// package builds without Node's types (the Worker gets it from workerd,
// whose Node compatibility is on by default since compatibility date
// 2026-08-04; else the `nodejs_als` flag). Not emitted: the published .d.ts
// files do not mention it.
declare module "node:async_hooks" {
  export class AsyncLocalStorage<T> {
    run<R>(store: T, callback: () => R): R;
    getStore(): T | undefined;
  }
}
