// One card by id, or null.
import { query, v } from "@pylon-workers/functions";
import type { Card } from "./_cards.ts";

export default query({
  args: { cardId: v.id("Card") },
  handler: async (ctx, args) => (await ctx.db.get<Card>("Card", args.cardId)) ?? null,
});
