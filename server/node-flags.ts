/**
 * The Node flags the registry runs with (the image's ENTRYPOINT, deploy/quickstart.sh and `npm start` pass the
 * same on their command lines; the benches and the tests start it with these). Command-line only: V8 refuses
 * them in NODE_OPTIONS, and --single-threaded-gc set at run time crashed V8 at the next full collection.
 * - --single-threaded-gc: each collection (frequent: every body arrives in 64 KiB buffers) otherwise waits on
 *   helper threads that Redis, S3 and the clients keep off the cores. A proxied S3 pull of 256 MiB cost
 *   0.83-1.07 s of CPU with them, half on those threads, against 0.27-0.47 s without (bench/README.md, session 10).
 */
// `serve` sets --heap-growing-percent itself (server/cli.ts): V8 takes that one at run time.
export const REGISTRY_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];
