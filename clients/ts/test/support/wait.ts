// Waiting in the tests: the clients react to frames asynchronously, so a
// test polls for what it expects (with a deadline) or lets time pass.

/** Polls until `cond` holds; throws after `timeoutMs` naming `what`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
