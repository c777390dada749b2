// Adds a card at the end of its column and enqueues the job `notifyCard`
// for it on the `default` queue: the job is sent only if this mutation
// commits. `failAfter: true` throws after enqueuing (the outbox test: no
// card, no job). Returns the card's and the job's ids.
import { mutation, v } from "@pylon-workers/functions";
import { cardsIn, FIRST_COLUMN } from "./_cards.ts";

export default mutation({
  args: { title: v.string(), column: v.optional(v.string()), failAfter: v.optional(v.boolean()) },
  handler: async (ctx, args) => {
    const title = args.title.trim();
    if (title === "" || title.length > 200) return ctx.error("BAD_TITLE", "a title has 1 to 200 characters");
    const column = args.column ?? FIRST_COLUMN;
    const above = (await cardsIn(ctx.db, column)).slice(-1);
    const row: Record<string, string | number | boolean> = {
      title,
      done: false,
      position: above[0] === undefined ? 0 : above[0].position + 1,
      createdAt: new Date().toISOString(),
    };
    if (ctx.auth.userId !== null) row.author = ctx.auth.userId;
    if (column !== FIRST_COLUMN) row.column = column;
    const id = await ctx.db.insert("Card", row);
    const job = await ctx.jobs.enqueue("notifyCard", { id }, { queue: "default" });
    if (args.failAfter === true) return ctx.error("ON_PURPOSE", "failed after enqueuing");
    return { id, job };
  },
});
