// Steps the caller out of a room from an action (docs/rooms.md): with
// `leave` false it only sets its presence to `{status}` (the member must
// be in the room: `MEMBER_NOT_FOUND` otherwise) and answers whether the
// room list, which trails the rooms by about 100 ms, shows the room yet;
// with `leave` true it leaves and answers whether it was in. As the
// caller, so the shard rules decide.
import { action, v } from "@pylon-workers/functions";

export default action({
  args: { room: v.string(), status: v.string(), leave: v.boolean() },
  handler: async (ctx, { room, status, leave }) => {
    const me = ctx.auth.userId;
    if (me === null) return ctx.error("SIGN_IN", "sign in to check out of a room");
    if (leave) {
      const { left } = await ctx.rooms.leave(room, me);
      return { left };
    }
    await ctx.rooms.setPresence(room, me, { status });
    const { rooms } = await ctx.rooms.list({ limit: 1000 });
    return { listed: rooms.some((r) => r.room === room) };
  },
});
