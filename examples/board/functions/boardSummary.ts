// Counts the board's cards per column, and how many are done.
import { query } from "@pylon-workers/functions";
import { columnOf, PAGE, type Card } from "./_cards.ts";

export default query({
  handler: async (ctx) => {
    const cards = await ctx.db.query<Card>("Card", { where: { archived: { $ne: true } }, limit: PAGE });
    const columns: Record<string, { cards: number; done: number }> = {};
    let done = 0;
    for (const card of cards) {
      const column = (columns[columnOf(card)] ??= { cards: 0, done: 0 });
      column.cards += 1;
      if (card.done) {
        column.done += 1;
        done += 1;
      }
    }
    return { total: cards.length, done, columns, capped: cards.length === PAGE };
  },
});
