import { setTimeout as sleep } from 'node:timers/promises';

/** Calls `probe` until its answer satisfies `done` and returns that answer; rejects with the last one on timeout. */
export async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last answer: ${JSON.stringify(value)}`);
    await sleep(100);
  }
}
