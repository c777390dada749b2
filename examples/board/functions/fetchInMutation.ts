// For the I/O rule's test: a mutation that fetches fails with MUTATION_IO
// (the fetch is refused before it starts).
import { mutation } from "@pylon-workers/functions";

export default mutation({
  handler: async () => {
    const response = await fetch("http://127.0.0.1:9/");
    return { status: response.status };
  },
});
