import type { LogEntry } from '../container/logs/log-entry.js';
import type { ReplicaRuntime } from './converger.js';
import { replicaOf } from './replica-container.js';

/** What the registry asks a node for (`berth service logs`): the logs of some of its replicas. */
export interface LogRequest {
  id: string;
  replicas: string[];
  /** The last N lines of each container; all when null. */
  tail: number | null;
  follow: boolean;
}

/** One line as the node sends it: the registry adds the node's name from its credential, never from the line. */
export interface ReplicaLogLine {
  replica: string;
  stream: LogEntry['stream'];
  time: string;
  text: string;
}

/**
 * The lines of every container of the requested replicas (only containers Berth made: a request cannot
 * reach any other), each container's oldest first, followed until `signal` when the request says so.
 */
export async function* replicaLogs(runtime: ReplicaRuntime, request: LogRequest, signal: AbortSignal): AsyncGenerator<ReplicaLogLine> {
  const wanted = new Set(request.replicas);
  const sources = runtime
    .containers()
    .map(replicaOf)
    .filter((container) => container !== undefined && wanted.has(container.replica))
    .map((container) => {
      const options = { tail: request.tail ?? undefined, follow: request.follow, signal };
      return withReplica(container!.replica, runtime.logs(container!.record.id, options));
    });
  yield* merged(sources);
}

async function* withReplica(replica: string, entries: AsyncIterable<LogEntry>): AsyncGenerator<ReplicaLogLine> {
  for await (const entry of entries) yield { replica, stream: entry.stream, time: entry.time, text: entry.log.replace(/\n$/, '') };
}

/** The lines of every source as each comes (followed sources never end on their own), until all ended. */
async function* merged<T>(sources: AsyncGenerator<T>[]): AsyncGenerator<T> {
  const pending = new Map(sources.map((source, index) => [index, next(source, index)]));
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pending.set(index, next(sources[index]!, index));
      yield result.value;
    }
  } finally {
    await Promise.all(sources.map((source) => source.return(undefined)));
  }
}

function next<T>(source: AsyncGenerator<T>, index: number): Promise<{ index: number; result: IteratorResult<T> }> {
  return source.next().then((result) => ({ index, result }));
}
