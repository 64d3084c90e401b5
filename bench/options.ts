import { parseArgs } from 'node:util';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface BenchOptions {
  /** Size of the blob pushed and pulled for the throughput figures. */
  blobBytes: number;
  /** Chunk size of the chunked (PATCH) upload. */
  chunkBytes: number;
  /** Size of the blob streamed in and out while the servers' RSS is sampled. */
  rssBlobBytes: number;
  /** Push/pull repetitions; the median is reported. */
  runs: number;
  /** Distinct manifests PUT for the manifest PUT rate. */
  manifests: number;
  /** Manifest PUTs in flight at once (manifest PUT rate and tag creation). */
  concurrency: number;
  /** wrk connections and duration for the manifest GET rate. */
  connections: number;
  wrkSeconds: number;
  /** Tag count of the repository whose whole tag list is timed; pages are also timed at 1/10 and 5x that. */
  tags: number;
  /** Size of the 5-layer image pushed and pulled with docker end to end; 0 skips it (no dockerd). */
  imageBytes: number;
}

const USAGE = `usage: node dist/bench/registry-bench.js [options]
  --quick             small sizes for a fast run while developing
  --size-gib <n>      blob size for push/pull throughput (default 1)
  --chunk-mib <n>     chunk size of the chunked upload (default 8)
  --rss-gib <n>       blob size streamed while RSS is sampled (default 2)
  --runs <n>          push/pull repetitions, median reported (default 3)
  --manifests <n>     distinct manifests for the PUT rate (default 2000)
  --concurrency <n>   manifest PUTs in flight (default 8)
  --connections <n>   wrk connections for the manifest GET rate (default 32)
  --duration <s>      wrk duration in seconds (default 10)
  --tags <n>          tags in the repository whose whole list is timed (default 10000)
  --image-mib <n>     5-layer image for docker push/pull end to end (default 500; 0 skips it)`;

const DEFAULTS: BenchOptions = {
  blobBytes: GiB,
  chunkBytes: 8 * MiB,
  rssBlobBytes: 2 * GiB,
  runs: 3,
  manifests: 2000,
  concurrency: 8,
  connections: 32,
  wrkSeconds: 10,
  tags: 10_000,
  imageBytes: 500 * MiB,
};

const QUICK: BenchOptions = {
  ...DEFAULTS,
  blobBytes: 64 * MiB,
  rssBlobBytes: 128 * MiB,
  runs: 1,
  manifests: 200,
  wrkSeconds: 3,
  tags: 1000,
  imageBytes: 20 * MiB,
};

/** Another benchmark's defaults (and `--quick` values and usage text) over the registry benchmark's. */
export interface OptionPresets {
  defaults: Partial<BenchOptions>;
  quick: Partial<BenchOptions>;
  usage: string;
}

export function parseOptions(argv: string[], presets?: OptionPresets): BenchOptions {
  const usage = presets?.usage ?? USAGE;
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      help: { type: 'boolean' },
      'size-gib': { type: 'string' },
      'chunk-mib': { type: 'string' },
      'rss-gib': { type: 'string' },
      runs: { type: 'string' },
      manifests: { type: 'string' },
      concurrency: { type: 'string' },
      connections: { type: 'string' },
      duration: { type: 'string' },
      tags: { type: 'string' },
      'image-mib': { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const base = values.quick ? { ...QUICK, ...presets?.quick } : { ...DEFAULTS, ...presets?.defaults };
  const number = (name: keyof typeof values, fallback: number, scale = 1, allowZero = false): number => {
    const raw = values[name];
    if (typeof raw !== 'string') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero))
      throw new Error(`--${name} must be a positive number\n${usage}`);
    return Math.round(value * scale);
  };
  return {
    blobBytes: number('size-gib', base.blobBytes, GiB),
    chunkBytes: number('chunk-mib', base.chunkBytes, MiB),
    rssBlobBytes: number('rss-gib', base.rssBlobBytes, GiB),
    runs: number('runs', base.runs),
    manifests: number('manifests', base.manifests),
    concurrency: number('concurrency', base.concurrency),
    connections: number('connections', base.connections),
    wrkSeconds: number('duration', base.wrkSeconds),
    tags: number('tags', base.tags),
    imageBytes: number('image-mib', base.imageBytes, MiB, true),
  };
}
