/**
 * What the build's generated entry calls: `install([...])` registers the
 * app's functions and sets `globalThis.__pylon_functions`, the object the
 * Rust side calls (bridge.ts has its type):
 *
 * ```ts
 * import { install } from "@pylon-workers/functions/runtime";
 * import * as moveCard from "./functions/moveCard.ts";
 * install([{ name: "moveCard", file: "functions/moveCard.ts", module: moveCard }]);
 * ```
 */
import type { Bridge, FunctionsGlobal } from "./bridge.ts";
import { isDefinition, type FunctionDefinition } from "./define.ts";
import { FUNCTION_NAME } from "./function-name.ts";
import { ioGuard } from "./io-guard.ts";
import { runFunction } from "./run.ts";

/** One file of `functions/`: its name (the file name) and its module. */
export interface FunctionModule {
  name: string;
  /** For messages: the file, relative to the app. */
  file: string;
  module: { default?: unknown };
}

/** A file of `functions/` that cannot be registered (the build reports it). */
export class FunctionFileError extends Error {
  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = "FunctionFileError";
  }
}

/** Checks and registers `modules`, then installs `globalThis.__pylon_functions`. Throws naming the bad file. */
export function install(modules: readonly FunctionModule[]): FunctionsGlobal {
  const registry = new Map<string, FunctionDefinition>();
  for (const { name, file, module } of modules) {
    if (!FUNCTION_NAME.test(name)) {
      throw new FunctionFileError(file, `"${name}" is not a function name (a letter, then letters, digits or _, 64 at most)`);
    }
    if (registry.has(name)) throw new FunctionFileError(file, `a second function named ${name}`);
    if (!isDefinition(module.default)) {
      throw new FunctionFileError(file, "the default export is not a query, mutation or action (export default mutation({ args, handler }))");
    }
    registry.set(name, module.default);
  }
  ioGuard();
  const functions: FunctionsGlobal = Object.freeze({
    version: 1 as const,
    list: () => [...registry].map(([name, { kind, trusted }]) => ({ name, kind, trusted })),
    run: (name: string, bridge: Bridge, argsJson: string) => runFunction(registry, name, bridge, argsJson),
  });
  Object.defineProperty(globalThis, "__pylon_functions", { value: functions, configurable: true, writable: false });
  return functions;
}

export { FUNCTION_NAME } from "./function-name.ts";
export type { Bridge, DbOp, FunctionsGlobal, RoomOp } from "./bridge.ts";
