import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** How long `runc events` may take to report and quit once the container is gone, before it is stopped. */
const SETTLE_MS = 1000;

export interface OomWatch {
  /** Once the run is over: whether the kernel's OOM killer acted in the container's cgroup meanwhile. */
  outcome(): Promise<boolean>;
}

/**
 * Watches a memory-limited container for OOM kills with `runc events`, which waits on the cgroup's OOM
 * notification (an eventfd, cgroup v1's memory.oom_control) and prints `{"type":"oom"}` when it fires. The
 * answer cannot be read after the exit: `runc run` removes the cgroup as its process ends.
 */
export function watchOutOfMemory(runtime: string, runtimeRoot: string, containerId: string): OomWatch {
  const events = spawn(runtime, ['--root', runtimeRoot, 'events', '--interval', '24h', containerId], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let killed = false;
  events.once('error', () => undefined);
  createInterface({ input: events.stdout, crlfDelay: Infinity }).on('line', (line) => {
    if (/"type"\s*:\s*"oom"/.test(line)) killed = true;
  });
  const ended = new Promise<void>((resolve) => events.once('close', () => resolve()));
  return {
    outcome: async () => {
      const timer = setTimeout(() => events.kill('SIGKILL'), SETTLE_MS);
      await ended;
      clearTimeout(timer);
      return killed;
    },
  };
}
