// Adds a card later: schedules addCardChecked to run `delayMs` after this
// mutation commits (durable on the shard's alarm: it runs after an
// eviction or a restart too). Returns the scheduled call's id, which
// `ctx.scheduler.cancel` takes.
import { mutation, v } from "@pylon-workers/functions";

export default mutation({
  args: { title: v.string(), column: v.optional(v.string()), delayMs: v.int() },
  handler: async (ctx, args) => {
    if (args.delayMs < 0 || args.delayMs > 86_400_000) return ctx.error("BAD_DELAY", "a delay is 0 to 24 hours, in ms");
    const later: Record<string, string> = { title: args.title };
    if (args.column !== undefined) later.column = args.column;
    return ctx.scheduler.runAfter(args.delayMs, "addCardChecked", later);
  },
});
