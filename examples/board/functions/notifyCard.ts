// The handler of the job addCardAndNotify enqueues: an action (a job may
// do I/O) that marks the card by moving it to the column "notified",
// through moveCard in the card's shard.
import { action, v } from "@pylon-workers/functions";

export const NOTIFIED = "notified";

export default action({
  args: { id: v.id("Card") },
  handler: async (ctx, args) => ctx.runMutation("moveCard", { cardId: args.id, column: NOTIFIED, position: 0 }),
});
