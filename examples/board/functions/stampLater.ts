// Schedules `stamp` on the shard's alarm, `delayMs` after this mutation,
// with the time it is due: the jobs bench's timer lateness (benches/jobs.rs).
import { mutation, v } from "@pylon-workers/functions";

export default mutation({
  args: { delayMs: v.int(), tag: v.string() },
  handler: async (ctx, args) => {
    if (args.delayMs < 0 || args.delayMs > 86_400_000) return ctx.error("BAD_DELAY", "a delay is 0 to 24 hours, in ms");
    const dueMs = Date.now() + args.delayMs;
    return ctx.scheduler.runAfter(args.delayMs, "stamp", { dueMs, tag: args.tag });
  },
});
