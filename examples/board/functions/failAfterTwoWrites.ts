// For the atomicity test: two inserts, then a failure. Nothing of it may
// remain, and no subscriber may see a diff.
import { mutation, v } from "@pylon-workers/functions";

export default mutation({
  args: { title: v.optional(v.string()) },
  handler: async (ctx, args) => {
    const title = args.title ?? "never seen";
    const createdAt = new Date().toISOString();
    await ctx.db.insert("Card", { title: `${title} 1`, done: false, position: 0, createdAt });
    await ctx.db.insert("Card", { title: `${title} 2`, done: false, position: 1, createdAt });
    return ctx.error("ON_PURPOSE", "failed after two writes");
  },
});
