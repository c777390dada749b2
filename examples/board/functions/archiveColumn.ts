// Archives a column: its cards get `archived` (they leave the board's
// columns and its summary, and stay in storage). Returns how many.
import { mutation, v } from "@pylon-workers/functions";
import { cardsIn } from "./_cards.ts";

export default mutation({
  args: { column: v.string() },
  handler: async (ctx, args) => {
    let archived = 0;
    // Reads see the call's own writes, so each page is what is left.
    for (;;) {
      const page = await cardsIn(ctx.db, args.column);
      if (page.length === 0) break;
      for (const card of page) await ctx.db.update("Card", card.id, { archived: true });
      archived += page.length;
    }
    return { archived };
  },
});
