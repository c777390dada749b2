// Renames a card: one row, one write (what `benches/fanout.rs` compares
// with the same update sent as a raw `mut`).
import { mutation, v } from "@pylon-workers/functions";

export default mutation({
  args: { cardId: v.id("Card"), title: v.string() },
  handler: async (ctx, args) => {
    const title = args.title.trim();
    if (title === "" || title.length > 200) return ctx.error("BAD_TITLE", "a title has 1 to 200 characters");
    await ctx.db.update("Card", args.cardId, { title });
    return null;
  },
});
