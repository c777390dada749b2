/**
 * @pylon-workers/functions: server functions in Pylon's shape. A file in
 * the app's `functions/` folder exports one by default; its file name is
 * its name (docs/functions.md).
 *
 * ```ts
 * import { mutation, v } from "@pylon-workers/functions";
 * export default mutation({
 *   args: { title: v.string() },
 *   handler: async (ctx, args) => ctx.db.insert("Card", { title: args.title, done: false }),
 * });
 * ```
 */
export { action, mutation, query, type CtxOf, type FunctionDefinition, type FunctionOptions } from "./define.ts";
export { ErrorCode, PylonError } from "./errors.ts";
export {
  v,
  type ArgsSpec,
  type Infer,
  type InferArgs,
  type InferShape,
  type ObjectValidator,
  type Shape,
  type Validator,
} from "./validators.ts";
export type {
  ActionCtx,
  Channels,
  Auth,
  DatabaseReader,
  DatabaseWriter,
  Fields,
  Filter,
  FunctionKind,
  JobOptions,
  Jobs,
  Json,
  ListedRoom,
  MutationCtx,
  OrderKey,
  Published,
  QueryCtx,
  QueryOptions,
  QuerySpec,
  RoomInfo,
  RoomMember,
  RoomPage,
  Rooms,
  Row,
  Scheduler,
} from "./ctx.ts";
