import { parseArgs } from 'node:util';

const MiB = 1024 * 1024;

export interface AgentBenchOptions {
  /** Timed `run --rm IMG echo hi` per tool, after `warmups` untimed ones. */
  runs: number;
  warmups: number;
  /** Timed pulls per tool (each from scratch). */
  pullRuns: number;
  /** Layers of the pulled image, each `layerBytes` of random (incompressible) data. */
  layers: number;
  layerBytes: number;
  /** Only the pull scenario (the run scenario's engines still start: the pull compares the same ones). */
  pullOnly: boolean;
  /** Another build's dist directory whose agent also pulls, beside this build's; empty for none. */
  compareBuild: string;
}

const DEFAULTS: AgentBenchOptions = {
  runs: 15,
  warmups: 2,
  pullRuns: 5,
  layers: 5,
  layerBytes: 40 * MiB,
  pullOnly: false,
  compareBuild: '',
};
const QUICK: AgentBenchOptions = { runs: 3, warmups: 1, pullRuns: 1, layers: 5, layerBytes: 4 * MiB, pullOnly: false, compareBuild: '' };

const USAGE = `usage: node dist/bench/agent-bench.js [options]
  --quick             few runs and a small image, for a fast run while developing
  --runs <n>          timed runs of \`run --rm IMG echo hi\` per tool (default 15)
  --warmups <n>       untimed runs per tool before those (default 2)
  --pull-runs <n>     timed pulls per tool, each downloading and unpacking everything (default 5)
  --layers <n>        layers of the pulled image (default 5)
  --layer-mib <n>     random data per layer, MiB (default 40)
  --pull-only         skip the run scenario
  --compare-build <dist directory>
                      also pull with the agent of another build (e.g. a copy of main's dist), side by side`;

export function parseAgentBenchOptions(argv: string[]): AgentBenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      help: { type: 'boolean' },
      runs: { type: 'string' },
      warmups: { type: 'string' },
      'pull-runs': { type: 'string' },
      layers: { type: 'string' },
      'layer-mib': { type: 'string' },
      'pull-only': { type: 'boolean' },
      'compare-build': { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const base = values.quick ? QUICK : DEFAULTS;
  const number = (name: 'runs' | 'warmups' | 'pull-runs' | 'layers' | 'layer-mib', fallback: number, scale = 1): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || (value === 0 && name !== 'warmups'))
      throw new Error(`--${name} must be a positive number\n${USAGE}`);
    return Math.round(value * scale);
  };
  return {
    runs: number('runs', base.runs),
    warmups: number('warmups', base.warmups),
    pullRuns: number('pull-runs', base.pullRuns),
    layers: number('layers', base.layers),
    layerBytes: number('layer-mib', base.layerBytes, MiB),
    pullOnly: values['pull-only'] ?? base.pullOnly,
    compareBuild: values['compare-build'] ?? base.compareBuild,
  };
}
