// The jobs bench's trivial mutation (benches/jobs.rs): a job handler run
// in its shard that reads and writes nothing, so the bench measures what
// the shard call adds to a job.
import { mutation, v } from "@pylon-workers/functions";

export default mutation({
  args: { n: v.int() },
  handler: (_ctx, args) => ({ n: args.n }),
});
