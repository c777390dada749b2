// Adds a card at the end of its column after checking its title (1 to 200
// characters once trimmed); returns its id.
import { mutation, v } from "@pylon-workers/functions";
import { cardsIn, FIRST_COLUMN, type Card } from "./_cards.ts";

export const MAX_TITLE = 200;

export default mutation({
  args: { title: v.string(), column: v.optional(v.string()) },
  handler: async (ctx, args) => {
    const title = args.title.trim();
    if (title === "") return ctx.error("EMPTY_TITLE", "a card needs a title");
    if (title.length > MAX_TITLE) return ctx.error("TITLE_TOO_LONG", `a title has at most ${MAX_TITLE} characters, not ${title.length}`);
    // Without a column the card goes after every card (the board before columns).
    const above =
      args.column === undefined
        ? await ctx.db.query<Card>({ entity: "Card", order: ["-position"], limit: 1 })
        : (await cardsIn(ctx.db, args.column)).slice(-1);
    const position = above.length === 0 ? 0 : (above[0] as Card).position + 1;
    const row: Record<string, string | number | boolean> = { title, done: false, position, createdAt: new Date().toISOString() };
    if (ctx.auth.userId !== null) row.author = ctx.auth.userId;
    if (args.column !== undefined && args.column !== FIRST_COLUMN) row.column = args.column;
    return ctx.db.insert("Card", row);
  },
});
