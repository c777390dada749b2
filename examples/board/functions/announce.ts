// Publishes to a channel from an action (docs/pubsub.md): the caller's
// text to `chat:{room}`, as the caller, so the manifest's channel rules
// decide whether it may.
import { action, v } from "@pylon-workers/functions";

export default action({
  args: { room: v.string(), text: v.string() },
  handler: async (ctx, args) => ctx.channels.publish(`chat:${args.room}`, { text: args.text, by: ctx.auth.userId }),
});
