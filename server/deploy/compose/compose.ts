import { z } from 'zod';
import {
  argv,
  checkTiming,
  constraint,
  duration,
  environment,
  healthcheck,
  image,
  labels,
  ports,
  resourcesBlock,
  restartPolicy,
  timingOf,
  updatePolicy,
  updatePolicyOf,
  volumes,
} from './compose-schema.js';
import type { HealthcheckSpec, ProbeSpec, ServiceSpec, StackSpec } from './stack-spec.js';

/** One thing wrong in a compose file, at a path such as `services.web.deploy.update_config.parallelism`. */
export interface ComposeIssue {
  path: string;
  message: string;
}

export class ComposeError extends Error {
  override name = 'ComposeError';
  constructor(readonly issues: ComposeIssue[]) {
    super(issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('\n'));
  }
}

const SWARM_MONITOR_DEFAULT_MS = 5_000;
const HEALTHY_DEADLINE_DEFAULT_MS = 5 * 60_000;
const PROGRESS_DEADLINE_DEFAULT_MS = 10 * 60_000;
const SERVICE_NAME = /^[a-z0-9][a-z0-9_-]*$/;

const probe = z
  .strictObject({
    http: z.strictObject({ port: z.number().int().min(1).max(65535), path: z.string().startsWith('/').default('/') }).optional(),
    tcp: z.strictObject({ port: z.number().int().min(1).max(65535) }).optional(),
    ...checkTiming,
  })
  .superRefine((check, ctx) => {
    if ((check.http === undefined) === (check.tcp === undefined))
      ctx.addIssue({ code: 'custom', message: 'a check is either http: or tcp:' });
  })
  .transform((check): ProbeSpec => {
    const timing = timingOf(check);
    return check.http
      ? { kind: 'http', port: check.http.port, path: check.http.path, timing }
      : { kind: 'tcp', port: check.tcp!.port, timing };
  });

const berthExtension = z.strictObject({
  track: z
    .string()
    .regex(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/, 'must be a tag')
    .optional(),
  healthy_deadline: duration.optional(),
  progress_deadline: duration.optional(),
  checks: z.array(probe).optional(),
});

const deploy = z.strictObject({
  mode: z.enum(['replicated', 'global']).optional(),
  replicas: z.number().int().min(0).optional(),
  labels: labels.optional(),
  placement: z
    .strictObject({ constraints: z.array(constraint).optional(), max_replicas_per_node: z.number().int().min(1).optional() })
    .optional(),
  resources: resourcesBlock.optional(),
  restart_policy: restartPolicy.optional(),
  update_config: updatePolicy(['rollback', 'pause', 'continue']).optional(),
  // Swarm's rollback_config cannot roll back a rollback.
  rollback_config: updatePolicy(['pause', 'continue']).optional(),
});

const service = z.preprocess(
  withoutExtensions(['x-berth']),
  z.strictObject({
    image,
    command: argv.optional(),
    entrypoint: argv.optional(),
    environment: environment.optional(),
    ports: ports.optional(),
    volumes: volumes.optional(),
    healthcheck: healthcheck.optional(),
    labels: labels.optional(),
    stop_signal: z
      .string()
      .regex(/^(SIG)?[A-Z0-9]+$|^\d+$/, 'must be a signal name such as SIGTERM')
      .optional(),
    stop_grace_period: duration.optional(),
    user: z.union([z.string(), z.number()]).transform(String).optional(),
    working_dir: z.string().startsWith('/', 'must be an absolute path').optional(),
    read_only: z.boolean().optional(),
    tmpfs: z.union([z.string(), z.array(z.string())]).optional(),
    deploy: deploy.optional(),
    'x-berth': berthExtension.optional(),
  }),
);

const namedVolume = z
  .strictObject({
    name: z.string().optional(),
    external: z.boolean().optional(),
    labels: labels.optional(),
    driver: z.literal('local').optional(),
  })
  .nullable();

const composeFile = z.preprocess(
  withoutExtensions([]),
  z.strictObject({
    // Obsolete in the compose specification; accepted and ignored, as docker compose does.
    version: z.string().optional(),
    name: z.string().optional(),
    services: z.record(z.string().regex(SERVICE_NAME, 'service names are lowercase letters, digits, - and _'), service),
    volumes: z.record(z.string(), namedVolume).optional(),
  }),
);

type ParsedService = z.output<typeof service>;

/**
 * Validates a compose document (already parsed, interpolated and with env_file resolved, see load-compose.ts)
 * and returns the stack it declares. Every problem found is reported at once, each naming its key.
 */
export function validateCompose(document: unknown): StackSpec {
  const parsed = composeFile.safeParse(document);
  if (!parsed.success) throw new ComposeError(parsed.error.issues.flatMap(issuesOf));
  const issues: ComposeIssue[] = [];
  const services: Record<string, ServiceSpec> = {};
  for (const [name, input] of Object.entries(parsed.data.services)) {
    services[name] = serviceSpec(input, `services.${name}`, issues);
  }
  checkVolumesDeclared(services, Object.keys(parsed.data.volumes ?? {}), issues);
  checkPublishedPorts(services, issues);
  if (Object.keys(services).length === 0) issues.push({ path: 'services', message: 'a stack needs at least one service' });
  if (issues.length > 0) throw new ComposeError(issues);
  return { services };
}

function serviceSpec(input: ParsedService, path: string, issues: ComposeIssue[]): ServiceSpec {
  const berth = input['x-berth'] ?? {};
  const checks = berth.checks ?? [];
  const health = input.healthcheck ?? null;
  const detectionMs = failureDetectionMs(health, checks);
  const monitorDefault = Math.max(SWARM_MONITOR_DEFAULT_MS, detectionMs);
  const deployInput = input.deploy ?? {};
  for (const key of ['update_config', 'rollback_config'] as const) {
    const monitor = deployInput[key]?.monitor;
    if (monitor !== undefined && monitor < detectionMs)
      issues.push({
        path: `${path}.deploy.${key}.monitor`,
        message: `${monitor} ms is shorter than the health checks can take to report a failure (${detectionMs} ms: retries × (interval + timeout))`,
      });
  }
  const mode = deployInput.mode ?? 'replicated';
  if (mode === 'global' && deployInput.replicas !== undefined)
    issues.push({ path: `${path}.deploy.replicas`, message: 'replicas can only be used with mode: replicated' });
  if (mode === 'global' && deployInput.placement?.max_replicas_per_node !== undefined)
    issues.push({
      path: `${path}.deploy.placement.max_replicas_per_node`,
      message: 'max_replicas_per_node can only be used with mode: replicated',
    });
  const healthyDeadlineMs = berth.healthy_deadline ?? HEALTHY_DEADLINE_DEFAULT_MS;
  const progressDeadlineMs = berth.progress_deadline ?? PROGRESS_DEADLINE_DEFAULT_MS;
  if (progressDeadlineMs < healthyDeadlineMs)
    issues.push({
      path: `${path}.x-berth.progress_deadline`,
      message: 'must be at least healthy_deadline (a rollout waits for at least one replica)',
    });
  const track = berth.track ?? null;
  if (track !== null && input.image.digest !== null)
    issues.push({ path: `${path}.x-berth.track`, message: 'the image pins a digest, which never moves: drop the digest to follow a tag' });
  const explicitTag = /:[^/]*$/.test(input.image.image.split('@')[0]!);
  if (track !== null && explicitTag && input.image.tag !== track)
    issues.push({ path: `${path}.x-berth.track`, message: `follows tag ${track} but the image names tag ${input.image.tag}` });
  return {
    ...input.image,
    tag: track ?? input.image.tag,
    command: input.command ?? null,
    entrypoint: input.entrypoint ?? null,
    environment: input.environment ?? {},
    ports: input.ports ?? [],
    volumes: input.volumes ?? [],
    healthcheck: health,
    labels: input.labels ?? {},
    stopSignal: input.stop_signal ?? 'SIGTERM',
    stopGracePeriodMs: input.stop_grace_period ?? 10_000,
    user: input.user ?? null,
    workingDir: input.working_dir ?? null,
    readOnly: input.read_only ?? false,
    tmpfs: input.tmpfs === undefined ? [] : typeof input.tmpfs === 'string' ? [input.tmpfs] : input.tmpfs,
    deploy: {
      mode,
      replicas: mode === 'global' ? 0 : (deployInput.replicas ?? 1),
      labels: deployInput.labels ?? {},
      placement: {
        constraints: deployInput.placement?.constraints ?? [],
        maxReplicasPerNode: deployInput.placement?.max_replicas_per_node ?? null,
      },
      limits: deployInput.resources?.limits ?? { cpus: null, memoryBytes: null, pids: null },
      reservations: deployInput.resources?.reservations ?? { cpus: null, memoryBytes: null, pids: null },
      restartPolicy: deployInput.restart_policy ?? { condition: 'any', delayMs: 5_000, maxAttempts: null, windowMs: 0 },
      update: updatePolicyOf(deployInput.update_config ?? {}, 'rollback', monitorDefault),
      rollback: updatePolicyOf(deployInput.rollback_config ?? {}, 'pause', monitorDefault),
    },
    berth: { track, healthyDeadlineMs, progressDeadlineMs, checks },
  };
}

/**
 * The longest a replica that turns bad can still look healthy: `retries` probes in a row must fail, each
 * starting an interval after the last and taking up to its timeout. A monitor shorter than this would
 * call an update good before its checks could have said otherwise.
 */
export function failureDetectionMs(health: HealthcheckSpec | null, checks: ProbeSpec[]): number {
  const timings = [...(health && health.test[0] !== 'NONE' ? [health] : []), ...checks.map((check) => check.timing)];
  return Math.max(0, ...timings.map((timing) => timing.retries * (timing.intervalMs + timing.timeoutMs)));
}

function checkVolumesDeclared(services: Record<string, ServiceSpec>, declared: string[], issues: ComposeIssue[]): void {
  for (const [name, spec] of Object.entries(services)) {
    spec.volumes.forEach((mount, index) => {
      if (mount.type === 'volume' && mount.source !== null && !declared.includes(mount.source))
        issues.push({
          path: `services.${name}.volumes[${index}]`,
          message: `volume ${mount.source} is not declared under the top-level volumes:`,
        });
    });
  }
}

/** Two replicas of a stack publishing the same host port could land on one node: refused before anything is stored. */
function checkPublishedPorts(services: Record<string, ServiceSpec>, issues: ComposeIssue[]): void {
  const owners = new Map<string, string>();
  for (const [name, spec] of Object.entries(services)) {
    spec.ports.forEach((port, index) => {
      if (port.published === null) return;
      const key = `${port.published}/${port.protocol}`;
      const owner = owners.get(key);
      if (owner) issues.push({ path: `services.${name}.ports[${index}]`, message: `port ${key} is already published by ${owner}` });
      else owners.set(key, `services.${name}.ports[${index}]`);
    });
  }
}

/** Drops `x-` keys (compose extensions, free for anyone), but for the ones this level understands. */
function withoutExtensions(kept: string[]) {
  return (value: unknown): unknown =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).filter(([key]) => !key.startsWith('x-') || kept.includes(key)))
      : value;
}

function issuesOf(issue: z.core.$ZodIssue): ComposeIssue[] {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys')
    return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'is not a supported key' }));
  if (issue.code === 'invalid_union') {
    // The branch the value was meant for is the one that got past its type check: report its issues alone.
    const meant = issue.errors.filter((branch) => !branch.every(isTypeMismatch));
    if (meant.length > 0)
      return meant.flat().flatMap((inner) => issuesOf({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue));
  }
  return [{ path, message: issue.message }];
}

function isTypeMismatch(issue: z.core.$ZodIssue): boolean {
  if (issue.path.length > 0) return false;
  return issue.code === 'invalid_type' || (issue.code === 'invalid_union' && issue.errors.every((branch) => branch.every(isTypeMismatch)));
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (text, part) => (typeof part === 'number' ? `${text}[${part}]` : text === '' ? String(part) : `${text}.${String(part)}`),
    '',
  );
}
