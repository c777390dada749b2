// Checks the caller into a room from an action (docs/rooms.md): joins it
// as itself with a status that the room's sockets see in their presence
// (for `ttlMs` if given), tells them with a `checkIn` broadcast, and
// answers how many are in the room. As the caller, so the shard rules
// decide whether it may enter the room.
import { action, v } from "@pylon-workers/functions";

export default action({
  args: { room: v.string(), status: v.string(), ttlMs: v.optional(v.int()) },
  handler: async (ctx, { room, status, ttlMs }) => {
    const me = ctx.auth.userId;
    if (me === null) return ctx.error("SIGN_IN", "sign in to check into a room");
    await ctx.rooms.join(room, me, { status }, { ttlMs });
    await ctx.rooms.broadcast(room, "checkIn", { member: me, status });
    const { size } = await ctx.rooms.get(room);
    return { size };
  },
});
