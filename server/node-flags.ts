import v8 from 'node:v8';

/**
 * The Node flags the registry runs with (the image's ENTRYPOINT, deploy/quickstart.sh and `npm start` pass the
 * same on their command lines; the benches and the tests start it with these). Command-line only: V8 refuses
 * them in NODE_OPTIONS, and --single-threaded-gc set at run time crashed V8 at the next full collection.
 * - --single-threaded-gc: each collection (frequent: every body arrives in 64 KiB buffers) otherwise waits on
 *   helper threads that Redis, S3 and the clients keep off the cores. A proxied S3 pull of 256 MiB cost
 *   0.83-1.07 s of CPU with them, half on those threads, against 0.27-0.47 s without (bench/README.md, session 10).
 */
export const REGISTRY_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

/**
 * The V8 setting `serve` makes itself, so that it holds however the registry is started. Every 64 KiB of a
 * request body arrives in its own ArrayBuffer, and V8 counts the external bytes allocated since the last full
 * collection against the old generation's limit. The young generation frees those buffers only when 32 MiB of
 * them are pending (a fixed V8 bound), so with the limit V8 derives from the registry's ~18 MB heap (often
 * 10-14 MB of room) a push ran a mark-compact every ~13 MiB received: 66-88 per 2 GiB pushed, about a third of
 * the push's CPU. Growing the limit to three times the live heap after each full collection leaves room above
 * that 32 MiB, so the buffers die in scavenges instead. V8 reads this flag at each full collection, so setting
 * it before serving is enough.
 */
export function leaveRoomForRequestBuffers(): void {
  v8.setFlagsFromString('--heap-growing-percent=200');
}
