// Writes a card that says when it was due and when it ran, for the jobs
// bench's timer lateness (benches/jobs.rs; `stampLater` schedules it):
// `position` is the due time, the title "ran <ms>" the time it ran (both
// ms since the epoch), `column` the bench's tag.
import { mutation, v } from "@pylon-workers/functions";

export default mutation({
  args: { dueMs: v.int(), tag: v.string() },
  handler: async (ctx, args) => {
    const ranMs = Date.now();
    return ctx.db.insert("Card", {
      title: `ran ${ranMs}`,
      done: false,
      column: args.tag,
      position: args.dueMs,
      createdAt: new Date(ranMs).toISOString(),
    });
  },
});
