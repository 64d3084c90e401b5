import { z } from 'zod';
import { isDigest } from '../../../oci/digest.js';
import { isValidRepositoryName, isValidTag } from '../../../oci/names.js';
import { parseBytes, parseDuration } from './units.js';
import type { HealthcheckSpec, MountSpec, PlacementConstraint, PortSpec, UpdatePolicy } from './stack-spec.js';

/**
 * The zod schemas of the compose keys Berth supports, with the compose specification's meaning, each
 * transformed into its StackSpec form. Every object is strict: a key Berth does not support is refused
 * with its path, never silently ignored.
 */

export const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(text)} (e.g. 10s, 1m30s, 500ms)` });
    return z.NEVER;
  }
  return ms;
});

const bytes = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const parsed = parseBytes(value);
  if (parsed === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a byte value: ${JSON.stringify(value)} (e.g. 512m, 1gb)` });
    return z.NEVER;
  }
  return parsed;
});

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String);

/** `KEY=value` lists or maps, as compose allows for environment and labels; a bare `KEY` in a list has no value. */
const keyValues = (nullMeans: 'drop' | 'empty') =>
  z.union([z.record(z.string(), scalar.nullable()), z.array(z.string())]).transform((value) => {
    const entries: Array<[string, string | null]> = Array.isArray(value)
      ? value.map((line) => {
          const equals = line.indexOf('=');
          return equals === -1 ? [line, null] : [line.slice(0, equals), line.slice(equals + 1)];
        })
      : Object.entries(value);
    return Object.fromEntries(
      entries.flatMap(([key, entry]) => (entry !== null ? [[key, entry]] : nullMeans === 'empty' ? [[key, '']] : [])),
    ) as Record<string, string>;
  });

export const environment = keyValues('drop');
export const labels = keyValues('empty');

/** A string is split like a shell would (quotes, backslashes), as compose does for command and entrypoint. */
export const argv = z.union([z.string(), z.array(scalar)]).transform((value, ctx) => {
  if (Array.isArray(value)) return value;
  const words = shellWords(value);
  if (words === undefined) {
    ctx.addIssue({ code: 'custom', message: `unbalanced quotes in ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return words;
});

const SHORT_PORT = /^(?:(?:\[([0-9a-fA-F:]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):)?(?:(\d+)(?:-(\d+))?:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/;

/** `[host_ip:][published[-end]:]target[-end][/protocol]`, ranges expanded into one port each. */
const shortPort = z.union([z.string(), z.number()]).transform((value, ctx): PortSpec[] => {
  const match = SHORT_PORT.exec(String(value));
  const fail = (why: string) => {
    ctx.addIssue({ code: 'custom', message: `invalid port ${JSON.stringify(value)}: ${why}` });
    return z.NEVER;
  };
  if (!match) return fail('expected [host_ip:][published:]target[/protocol]');
  const [, ipv6, ipv4, publishedStart, publishedEnd, targetStart, targetEnd, protocol] = match;
  const targets = range(Number(targetStart), targetEnd === undefined ? undefined : Number(targetEnd));
  const published =
    publishedStart === undefined ? undefined : range(Number(publishedStart), publishedEnd === undefined ? undefined : Number(publishedEnd));
  if (!targets || (published !== undefined && !published)) return fail('a range must go upwards');
  if ([...targets, ...(published ?? [])].some((port) => port < 1 || port > 65535)) return fail('ports are 1-65535');
  if (published && published.length !== targets.length && published.length !== 1)
    return fail('the published and target ranges differ in length');
  return targets.map((target, index) => ({
    target,
    published: published ? (published[published.length === 1 ? 0 : index] ?? null) : null,
    hostIp: ipv6 ?? ipv4 ?? null,
    protocol: protocol === 'udp' ? 'udp' : 'tcp',
  }));
});

const portNumber = z.number().int().min(1).max(65535);

const longPort = z
  .strictObject({
    name: z.string().optional(),
    target: portNumber,
    published: z.union([portNumber, z.string().regex(/^\d+$/, 'must be a port number').transform(Number).pipe(portNumber)]).optional(),
    host_ip: z.string().optional(),
    protocol: z.enum(['tcp', 'udp']).optional(),
    app_protocol: z.string().optional(),
    // Berth publishes a port on the node its replica runs on: Swarm's `host` mode.
    mode: z.literal('host', { error: 'Berth publishes ports on the replica\'s node: only mode "host" is supported' }).optional(),
  })
  .transform((port): PortSpec[] => [
    { target: port.target, published: port.published ?? null, hostIp: port.host_ip ?? null, protocol: port.protocol ?? 'tcp' },
  ]);

export const ports = z.array(z.union([shortPort, longPort])).transform((lists) => lists.flat());

const shortVolume = z.string().transform((value, ctx): MountSpec => {
  const parts = value.split(':');
  const fail = () => {
    ctx.addIssue({ code: 'custom', message: `invalid volume ${JSON.stringify(value)}: expected [source:]target[:ro|rw]` });
    return z.NEVER;
  };
  if (parts.length > 3 || parts.some((part) => part === '')) return fail();
  const last = parts[parts.length - 1]!;
  const mode = parts.length > 1 && /^(ro|rw)(,.*)?$|^(z|Z)$/.test(last) ? parts.pop()! : undefined;
  if (parts.length === 0 || parts.length > 2) return fail();
  const [first, second] = parts as [string, string | undefined];
  const target = second ?? first;
  if (!target.startsWith('/')) return fail();
  const source = second === undefined ? null : first;
  const isPath = source !== null && /^[./~]/.test(source);
  return { type: isPath ? 'bind' : 'volume', source, target, readOnly: mode?.split(',').includes('ro') ?? false };
});

const longVolume = z
  .strictObject({
    type: z.enum(['bind', 'volume', 'tmpfs']),
    source: z.string().optional(),
    target: z.string().startsWith('/', 'must be an absolute path'),
    read_only: z.boolean().optional(),
    consistency: z.string().optional(),
    bind: z
      .strictObject({
        propagation: z.string().optional(),
        create_host_path: z.boolean().optional(),
        selinux: z.enum(['z', 'Z']).optional(),
      })
      .optional(),
    volume: z.strictObject({ nocopy: z.boolean().optional() }).optional(),
    tmpfs: z.strictObject({ size: bytes.optional(), mode: z.number().optional() }).optional(),
  })
  .superRefine((volume, ctx) => {
    if (volume.type === 'bind' && !volume.source)
      ctx.addIssue({ code: 'custom', path: ['source'], message: 'a bind mount needs a source' });
  })
  .transform((volume): MountSpec => ({
    type: volume.type,
    source: volume.type === 'tmpfs' ? null : (volume.source ?? null),
    target: volume.target,
    readOnly: volume.read_only ?? false,
  }));

export const volumes = z.array(z.union([shortVolume, longVolume]));

export const HEALTHCHECK_DEFAULTS: Omit<HealthcheckSpec, 'test'> = {
  intervalMs: 30_000,
  timeoutMs: 30_000,
  retries: 3,
  startPeriodMs: 0,
  startIntervalMs: 5_000,
};

export const checkTiming = {
  interval: duration.optional(),
  timeout: duration.optional(),
  retries: z.number().int().min(1).optional(),
  start_period: duration.optional(),
  start_interval: duration.optional(),
};

type TimingInput = { interval?: number; timeout?: number; retries?: number; start_period?: number; start_interval?: number };

export function timingOf(input: TimingInput): Omit<HealthcheckSpec, 'test'> {
  return {
    intervalMs: input.interval ?? HEALTHCHECK_DEFAULTS.intervalMs,
    timeoutMs: input.timeout ?? HEALTHCHECK_DEFAULTS.timeoutMs,
    retries: input.retries ?? HEALTHCHECK_DEFAULTS.retries,
    startPeriodMs: input.start_period ?? HEALTHCHECK_DEFAULTS.startPeriodMs,
    startIntervalMs: input.start_interval ?? HEALTHCHECK_DEFAULTS.startIntervalMs,
  };
}

export const healthcheck = z
  .strictObject({
    test: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
    disable: z.boolean().optional(),
    ...checkTiming,
  })
  .superRefine((check, ctx) => {
    const test = check.test;
    if (Array.isArray(test) && !['CMD', 'CMD-SHELL', 'NONE'].includes(test[0]!))
      ctx.addIssue({ code: 'custom', path: ['test', 0], message: 'a test list starts with CMD, CMD-SHELL or NONE' });
    else if (Array.isArray(test) && test[0] !== 'NONE' && test.length < 2)
      ctx.addIssue({ code: 'custom', path: ['test'], message: 'the test has no command' });
    if (!check.disable && test === undefined)
      ctx.addIssue({ code: 'custom', path: ['test'], message: 'a healthcheck needs a test (or disable: true)' });
  })
  .transform((check): HealthcheckSpec => {
    const test = check.disable ? ['NONE'] : typeof check.test === 'string' ? ['CMD-SHELL', check.test] : check.test!;
    return { test, ...timingOf(check) };
  });

const CONSTRAINT = /^\s*(node\.hostname|node\.labels\.([^\s=!]+))\s*(==|!=)\s*(\S.*?)\s*$/;

export const constraint = z.string().transform((text, ctx): PlacementConstraint => {
  const match = CONSTRAINT.exec(text);
  if (!match) {
    ctx.addIssue({
      code: 'custom',
      message: `unsupported constraint ${JSON.stringify(text)}: expected node.hostname or node.labels.<name>, then == or !=, then a value`,
    });
    return z.NEVER;
  }
  const [, , label, operator, value] = match;
  return {
    field: label === undefined ? { kind: 'hostname' } : { kind: 'label', name: label },
    operator: operator as '==' | '!=',
    value: value!,
  };
});

export const resources = z
  .strictObject({
    cpus: z
      .union([
        z.number(),
        z
          .string()
          .regex(/^\d+(\.\d+)?$/, 'must be a number of CPUs')
          .transform(Number),
      ])
      .pipe(z.number().positive())
      .optional(),
    memory: bytes.optional(),
    pids: z.number().int().positive().optional(),
  })
  .transform((amounts) => ({ cpus: amounts.cpus ?? null, memoryBytes: amounts.memory ?? null, pids: amounts.pids ?? null }));

const NO_RESOURCES = { cpus: null, memoryBytes: null, pids: null };

export const resourcesBlock = z
  .strictObject({ limits: resources.optional(), reservations: resources.optional() })
  .transform((block) => ({ limits: block.limits ?? NO_RESOURCES, reservations: block.reservations ?? NO_RESOURCES }));

export const restartPolicy = z
  .strictObject({
    condition: z.enum(['none', 'on-failure', 'any']).optional(),
    delay: duration.optional(),
    max_attempts: z.number().int().min(0).optional(),
    window: duration.optional(),
  })
  .transform((policy) => ({
    condition: policy.condition ?? 'any',
    delayMs: policy.delay ?? 5_000,
    // Swarm's 0: no limit.
    maxAttempts: policy.max_attempts ? policy.max_attempts : null,
    windowMs: policy.window ?? 0,
  }));

/** update_config or rollback_config; `monitor` stays undefined when unset, so the health checks can set its default. */
export const updatePolicy = (actions: readonly [string, ...string[]]) =>
  z.strictObject({
    parallelism: z.number().int().min(0).optional(),
    delay: duration.optional(),
    failure_action: z.enum(actions).optional(),
    monitor: duration.optional(),
    max_failure_ratio: z.number().min(0).max(1).optional(),
    order: z.enum(['start-first', 'stop-first']).optional(),
  });

export type UpdatePolicyInput = z.output<ReturnType<typeof updatePolicy>>;

export function updatePolicyOf(input: UpdatePolicyInput, defaultAction: UpdatePolicy['failureAction'], monitorMs: number): UpdatePolicy {
  return {
    parallelism: input.parallelism ?? 1,
    delayMs: input.delay ?? 0,
    failureAction: (input.failure_action as UpdatePolicy['failureAction'] | undefined) ?? defaultAction,
    monitorMs: input.monitor ?? monitorMs,
    maxFailureRatio: input.max_failure_ratio ?? 0,
    // Berth's default, unlike Swarm's stop-first: the old replica serves until the new one is healthy.
    order: input.order ?? 'start-first',
  };
}

/** A repository of this registry with an optional tag and digest; a leading registry host is allowed and dropped. */
export const image = z.string().transform((text, ctx) => {
  const at = text.indexOf('@');
  const digest = at === -1 ? null : text.slice(at + 1);
  let name = at === -1 ? text : text.slice(0, at);
  const colon = name.lastIndexOf(':');
  const tag = colon > name.lastIndexOf('/') ? name.slice(colon + 1) : null;
  if (tag !== null) name = name.slice(0, colon);
  const first = name.split('/')[0]!;
  if (name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) name = name.slice(first.length + 1);
  const problem =
    digest !== null && !isDigest(digest)
      ? 'bad digest'
      : tag !== null && !isValidTag(tag)
        ? 'bad tag'
        : !isValidRepositoryName(name)
          ? 'the repository must be lowercase path components'
          : undefined;
  if (problem) {
    ctx.addIssue({ code: 'custom', message: `invalid image reference ${JSON.stringify(text)}: ${problem}` });
    return z.NEVER;
  }
  return { image: text, repository: name, tag: tag ?? (digest === null ? 'latest' : null), digest };
});

function range(start: number, end: number | undefined): number[] | undefined {
  if (end === undefined) return [start];
  if (end < start) return undefined;
  return Array.from({ length: end - start + 1 }, (_, index) => start + index);
}

/** Splits a command line into words the way a POSIX shell would (quotes and backslashes, no expansion). */
export function shellWords(text: string): string[] | undefined {
  const words: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (quote === "'") {
      if (char === "'") quote = undefined;
      else word += char;
    } else if (char === '\\' && index + 1 < text.length && (quote === undefined || '"\\$`'.includes(text[index + 1]!))) {
      word = (word ?? '') + text[++index];
    } else if (quote === '"') {
      if (char === '"') quote = undefined;
      else word += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      word ??= '';
    } else if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + char;
    }
  }
  if (quote) return undefined;
  if (word !== undefined) words.push(word);
  return words;
}
