// Looks `q` up in a local HTTP service (GET <serviceUrl>/lookup?q=...), at
// most LIMIT times a minute per user, and records the answer as a card
// (through addCardChecked). Returns what the service said and the card.
//
// The counts live in this isolate's memory: the schema has no entity for
// counters, and an action's ctx has no db of its own. So the limit is per
// isolate (each Worker isolate counts apart, and a restart forgets), which
// is enough to keep one client from hammering the service, not a quota.
import { action, v } from "@pylon-workers/functions";

export const LIMIT = 5;
const WINDOW_MS = 60_000;
const recentCalls = new Map<string, number[]>();

function admit(user: string, now: number): boolean {
  const recent = (recentCalls.get(user) ?? []).filter((at) => now - at < WINDOW_MS);
  if (recent.length >= LIMIT) {
    recentCalls.set(user, recent);
    return false;
  }
  recent.push(now);
  recentCalls.set(user, recent);
  if (recentCalls.size > 10_000) {
    for (const [key, times] of recentCalls) if (times.every((at) => now - at >= WINDOW_MS)) recentCalls.delete(key);
  }
  return true;
}

export default action({
  args: { serviceUrl: v.string(), q: v.string() },
  handler: async (ctx, args) => {
    let base: URL;
    try {
      base = new URL(args.serviceUrl);
    } catch {
      return ctx.error("BAD_SERVICE_URL", "serviceUrl is not a URL");
    }
    // A demo that calls a service on this machine, not anywhere a caller names.
    if (base.protocol !== "http:" || base.hostname !== "127.0.0.1") {
      return ctx.error("BAD_SERVICE_URL", "the service must be at http://127.0.0.1:<port>");
    }
    // Anonymous callers share one allowance.
    if (!admit(ctx.auth.userId ?? "anonymous", Date.now())) {
      return ctx.error("RATE_LIMITED", `at most ${LIMIT} lookups a minute`);
    }
    const url = new URL("/lookup", base);
    url.searchParams.set("q", args.q);
    const response = await ctx.fetch(url);
    const said = (await response.text()).trim();
    if (!response.ok) return ctx.error("SERVICE_FAILED", `the service answered ${response.status}: ${said.slice(0, 100)}`);
    const cardId = await ctx.runMutation<string>("addCardChecked", { title: `${args.q}: ${said}`.slice(0, 200) });
    return { said, cardId };
  },
});
