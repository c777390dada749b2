// The first step of the board's `onboard` workflow (schema.json): a card
// for the newcomer in the "onboarding" column. A workflow step gets
// {input, steps, event}; what it returns is kept as the step's result.
import { mutation, v } from "@pylon-workers/functions";

export default mutation({
  args: { input: v.object({ title: v.string() }), steps: v.any(), event: v.any() },
  handler: async (ctx, args) => {
    const title = args.input.title.trim();
    if (title === "" || title.length > 200) return ctx.error("BAD_TITLE", "a title has 1 to 200 characters");
    const id = await ctx.db.insert("Card", {
      title,
      done: false,
      position: 0,
      column: "onboarding",
      createdAt: new Date().toISOString(),
    });
    return { cardId: id };
  },
});
