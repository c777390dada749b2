// The jobs bench's trivial action (benches/jobs.rs): a job handler that
// does nothing but answer, so the bench measures the queue and the ledger.
import { action, v } from "@pylon-workers/functions";

export default action({
  args: { n: v.int() },
  handler: (_ctx, args) => ({ n: args.n }),
});
