import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';

export interface WrkResult {
  requestsPerSecond: number;
  p99Ms: number;
  /** Responses outside 2xx/3xx plus socket errors: must be 0 for the figures to count. */
  failures: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/**
 * Runs wrk with --latency against one URL and parses its summary; `script` is a wrk Lua script (e.g. one that
 * cycles through several paths).
 */
export async function runWrk(
  url: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
  script?: string,
): Promise<WrkResult> {
  const threads = Math.max(1, Math.min(availableParallelism(), connections, 4));
  // wrk gives up on a response after 2 s by default; on a loaded machine a slow answer is still an answer.
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '30s', '--latency'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  if (script) args.push('-s', script);
  const { stdout } = await promisify(execFile)('wrk', [...args, url], { timeout: (seconds + 60) * 1000 });
  return parseWrk(stdout);
}

function parseWrk(output: string): WrkResult {
  const rate = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(output);
  if (!rate || !p99) throw new Error(`cannot parse wrk output:\n${output}`);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket ? socket.slice(1).reduce((sum, count) => sum + Number(count), 0) : 0;
  return {
    requestsPerSecond: Number(rate[1]),
    p99Ms: Number(p99[1]) * (UNIT_MS[p99[2] ?? 'ms'] ?? 1),
    failures: non2xx + socketErrors,
  };
}
