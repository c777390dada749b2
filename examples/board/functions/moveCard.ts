// Moves a card to `column` at `position` (0 = top; past the end = last)
// and renumbers the positions of that column, and of the one it left,
// 0..n-1. One mutation: the moves are applied together, in one diff.
import { mutation, v } from "@pylon-workers/functions";
import { cardsIn, columnOf, type Card } from "./_cards.ts";

export default mutation({
  args: { cardId: v.id("Card"), column: v.string(), position: v.int() },
  handler: async (ctx, args) => {
    if (args.column === "" || args.column.length > 64) return ctx.error("BAD_COLUMN", "a column name has 1 to 64 characters");
    const card = await ctx.db.get<Card>("Card", args.cardId);
    if (!card) return ctx.error("NOT_FOUND", `no card ${args.cardId}`);
    const from = columnOf(card);

    const target = (await cardsIn(ctx.db, args.column)).filter((c) => c.id !== card.id);
    const at = Math.min(Math.max(args.position, 0), target.length);
    target.splice(at, 0, card);
    for (const [i, c] of target.entries()) {
      if (c.id === card.id) await ctx.db.update("Card", c.id, { column: args.column, position: i });
      else if (c.position !== i) await ctx.db.update("Card", c.id, { position: i });
    }
    if (from !== args.column) {
      const left = (await cardsIn(ctx.db, from)).filter((c) => c.id !== card.id);
      for (const [i, c] of left.entries()) {
        if (c.position !== i) await ctx.db.update("Card", c.id, { position: i });
      }
    }
    return { moved: true, column: args.column, position: at };
  },
});
