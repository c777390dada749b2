// A job handler that fails until its card's title starts with "fixed"
// (docs/jobs.md uses it to show retries, dead letters and a retry by hand
// that succeeds once the data is put right). An action: it reads the card
// through cardById in the job's shard, and marks it checked.
import { action, v } from "@pylon-workers/functions";
import type { Card } from "./_cards.ts";

export default action({
  args: { cardId: v.string() },
  handler: async (ctx, args) => {
    const card = await ctx.runQuery<Card | null>("cardById", { cardId: args.cardId });
    if (card === null) return ctx.error("NOT_FOUND", `no card ${args.cardId}`);
    if (!card.title.startsWith("fixed")) return ctx.error("NOT_FIXED", `card ${args.cardId} is titled ${JSON.stringify(card.title)}`);
    await ctx.runMutation("moveCard", { cardId: args.cardId, column: "checked", position: 0 });
    return { checked: args.cardId };
  },
});
