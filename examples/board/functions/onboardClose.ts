// The last step of the `onboard` workflow: the card opened by the first
// step moves to "onboarded", titled with who approved it (the event the
// workflow waited for).
import { mutation, v } from "@pylon-workers/functions";
import type { Card } from "./_cards.ts";

export default mutation({
  args: { input: v.any(), steps: v.any(), event: v.any() },
  handler: async (ctx, args) => {
    const opened = (args.steps as { open?: { cardId?: unknown } } | null)?.open?.cardId;
    if (typeof opened !== "string") return ctx.error("NO_CARD", "the open step left no card id");
    const cardId = opened;
    const card = await ctx.db.get<Card>("Card", cardId);
    if (!card) return ctx.error("NOT_FOUND", `no card ${cardId}`);
    const event = args.event as { by?: unknown } | null;
    const by = typeof event?.by === "string" ? event.by : "nobody";
    await ctx.db.update("Card", cardId, { column: "onboarded", done: true, title: `${card.title} (approved by ${by})`.slice(0, 200) });
    return { cardId, approvedBy: by };
  },
});
