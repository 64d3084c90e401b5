import type { ImageHealthcheck } from '../../../oci/manifest.js';
import type { RunRequest } from '../../api.js';
import { formatGoDuration, parseGoDuration } from '../../../platform/go-duration.js';

/**
 * A container's health check as docker keeps it (Config.Healthcheck): the probe (`["CMD", ...]`,
 * `["CMD-SHELL", "..."]` or `["NONE"]`), durations in nanoseconds and retries, where 0 means docker's default.
 */
export interface HealthConfig {
  Test: string[];
  Interval: number;
  Timeout: number;
  StartPeriod: number;
  StartInterval: number;
  Retries: number;
}

/** The `--health-*` flags of a run request, as typed. */
export type HealthFlags = Pick<
  RunRequest,
  | 'healthCmd'
  | 'healthTest'
  | 'healthInterval'
  | 'healthTimeout'
  | 'healthStartPeriod'
  | 'healthStartInterval'
  | 'healthRetries'
  | 'noHealthcheck'
>;

/** docker's defaults (daemon/health.go) for a zero field. */
export const HEALTH_DEFAULTS = {
  intervalNs: 30e9,
  timeoutNs: 30e9,
  startPeriodNs: 0,
  startIntervalNs: 5e9,
  retries: 3,
} as const;

/** docker's MinimumDuration for a non-zero interval, timeout, start period or start interval. */
const MINIMUM_DURATION_NS = 1e6;

const DURATION_FLAGS = [
  ['healthInterval', 'Interval', '--health-interval'],
  ['healthTimeout', 'Timeout', '--health-timeout'],
  ['healthStartPeriod', 'StartPeriod', '--health-start-period'],
  ['healthStartInterval', 'StartInterval', '--health-start-interval'],
] as const;

/**
 * The flags as docker's CLI and daemon read them: none given is undefined (the image's check stands),
 * `--no-healthcheck` is `["NONE"]`, otherwise a partial config whose zero fields the image fills in.
 * `fail` throws the user's error.
 */
export function parseHealthFlags(flags: HealthFlags, fail: (message: string) => never): HealthConfig | undefined {
  const durations = DURATION_FLAGS.map(([flag, field, name]) => [field, parseDurationFlag(flags[flag], name, fail)] as const);
  const retries = parseRetries(flags.healthRetries, fail);
  const test = probeOf(flags, fail);
  const given = test.length > 0 || retries !== 0 || durations.some(([, value]) => value !== 0);
  if (flags.noHealthcheck) {
    if (given) fail('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'], Interval: 0, Timeout: 0, StartPeriod: 0, StartInterval: 0, Retries: 0 };
  }
  if (!given) return undefined;
  const config: HealthConfig = {
    Test: test,
    Interval: 0,
    Timeout: 0,
    StartPeriod: 0,
    StartInterval: 0,
    Retries: retries,
  };
  for (const [field, value] of durations) {
    if (value !== 0 && value < MINIMUM_DURATION_NS)
      fail(`${field} in Healthcheck cannot be less than ${formatGoDuration(MINIMUM_DURATION_NS)}`);
    config[field] = value;
  }
  return config;
}

/** `--health-cmd` is a shell command; `healthTest` is the probe as given, in either form. */
function probeOf(flags: HealthFlags, fail: (message: string) => never): string[] {
  const cmd = flags.healthCmd ?? '';
  if (flags.healthTest === undefined) return cmd === '' ? [] : ['CMD-SHELL', cmd];
  if (cmd !== '') fail('--health-cmd conflicts with healthTest: give the probe once');
  const [kind, ...rest] = flags.healthTest;
  if ((kind !== 'CMD' && kind !== 'CMD-SHELL') || rest.length === 0 || (kind === 'CMD-SHELL' && rest.length > 1))
    fail(`healthTest is ["CMD", program, ...args] or ["CMD-SHELL", command], not ${JSON.stringify(flags.healthTest)}`);
  return flags.healthTest;
}

function parseDurationFlag(text: string | undefined, name: string, fail: (message: string) => never): number {
  if (text === undefined || text === '') return 0;
  const parsed = parseGoDuration(text);
  if ('error' in parsed) return fail(`invalid argument ${JSON.stringify(text)} for "${name}" flag: ${parsed.error}`);
  if (parsed.nanoseconds < 0) fail(`${name} cannot be negative`);
  return parsed.nanoseconds;
}

function parseRetries(value: number | string | undefined, fail: (message: string) => never): number {
  if (value === undefined || value === '') return 0;
  const retries = Number(value);
  if (!Number.isInteger(retries))
    fail(
      `invalid argument ${JSON.stringify(String(value))} for "--health-retries" flag: strconv.ParseInt: parsing ${JSON.stringify(String(value))}: invalid syntax`,
    );
  if (retries < 0) fail('--health-retries cannot be negative');
  return retries;
}

/** docker's merge: the flags' config, its empty probe and zero fields taken from the image's HEALTHCHECK. */
export function mergeHealthcheck(user: HealthConfig | undefined, image: ImageHealthcheck | null | undefined): HealthConfig | undefined {
  const fromImage = image ? imageHealthConfig(image) : undefined;
  if (!user) return fromImage;
  if (!fromImage) return user;
  return {
    Test: user.Test.length > 0 ? user.Test : fromImage.Test,
    Interval: user.Interval || fromImage.Interval,
    Timeout: user.Timeout || fromImage.Timeout,
    StartPeriod: user.StartPeriod || fromImage.StartPeriod,
    StartInterval: user.StartInterval || fromImage.StartInterval,
    Retries: user.Retries || fromImage.Retries,
  };
}

function imageHealthConfig(image: ImageHealthcheck): HealthConfig {
  return {
    Test: image.Test ?? [],
    Interval: image.Interval ?? 0,
    Timeout: image.Timeout ?? 0,
    StartPeriod: image.StartPeriod ?? 0,
    StartInterval: image.StartInterval ?? 0,
    Retries: image.Retries ?? 0,
  };
}

/** The command a probe runs in the container, or undefined when there is no check (none, `NONE`, an unknown kind). */
export function probeCommand(config: HealthConfig | undefined, shell: readonly string[] | null | undefined): string[] | undefined {
  const [kind, ...rest] = config?.Test ?? [];
  if (kind === 'CMD' && rest.length > 0) return rest;
  if (kind === 'CMD-SHELL' && rest.length > 0) return [...(shell && shell.length > 0 ? shell : ['/bin/sh', '-c']), ...rest];
  return undefined;
}

/** The durations and retries a check runs with, docker's defaults in place of zeros. */
export function effectiveTiming(config: HealthConfig): {
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
} {
  return {
    intervalMs: (config.Interval || HEALTH_DEFAULTS.intervalNs) / 1e6,
    timeoutMs: (config.Timeout || HEALTH_DEFAULTS.timeoutNs) / 1e6,
    startPeriodMs: (config.StartPeriod || HEALTH_DEFAULTS.startPeriodNs) / 1e6,
    startIntervalMs: (config.StartInterval || HEALTH_DEFAULTS.startIntervalNs) / 1e6,
    retries: config.Retries > 0 ? config.Retries : HEALTH_DEFAULTS.retries,
  };
}

/** Config.Healthcheck as docker's inspect shows it: zero durations and retries left out. */
export function healthcheckShown(config: HealthConfig | undefined): Partial<HealthConfig> | undefined {
  if (!config) return undefined;
  return Object.fromEntries(Object.entries(config).filter(([key, value]) => key === 'Test' || value !== 0)) as Partial<HealthConfig>;
}
