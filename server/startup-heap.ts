import v8 from 'node:v8';

// V8 doubles its young generation after a scavenge in which much survives, and nearly everything a starting
// registry allocates survives (compiled modules, schemas, routes, clients): by the time it listens, the young
// generation has grown to its 32 MiB maximum, and an idle registry keeps it (about 12 MiB of RSS). So it does
// not grow while the registry starts, and grows as V8 decides once the registry serves.
const STARTUP_GROWTH_FACTOR = 1;
const V8_DEFAULT_GROWTH_FACTOR = 2;

/** Keeps the young generation at its initial size; called before the program's modules load. */
export function limitStartupHeap(): void {
  v8.setFlagsFromString(`--semi-space-growth-factor=${STARTUP_GROWTH_FACTOR}`);
}

/** Gives V8 back its default young-generation growth, for the load the started registry serves. */
export function endStartupHeap(): void {
  v8.setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH_FACTOR}`);
}
