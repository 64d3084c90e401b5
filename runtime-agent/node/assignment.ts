import { z } from 'zod';

/**
 * What the registry's node API sends and takes (server/deploy/node-service.ts), as the agent reads it: only
 * the parts of a service spec a replica's container is made from. Unknown fields are ignored, so a newer
 * registry can add some without breaking older agents.
 */

const healthcheckSchema = z.object({
  test: z.array(z.string()),
  intervalMs: z.number(),
  timeoutMs: z.number(),
  retries: z.number(),
  startPeriodMs: z.number(),
  startIntervalMs: z.number(),
});

const checkTimingSchema = healthcheckSchema.omit({ test: true });

/** An `x-berth` check: http passes on a 2xx or 3xx answer, tcp when the port accepts a connection. */
const replicaCheckSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('http'),
    port: z.number().int().min(1).max(65535),
    path: z.string().startsWith('/'),
    timing: checkTimingSchema,
  }),
  z.object({ kind: z.literal('tcp'), port: z.number().int().min(1).max(65535), timing: checkTimingSchema }),
]);

export type ReplicaCheck = z.infer<typeof replicaCheckSchema>;

const replicaSpecSchema = z.object({
  command: z.array(z.string()).nullable(),
  entrypoint: z.array(z.string()).nullable(),
  environment: z.record(z.string(), z.string()),
  ports: z.array(
    z.object({ target: z.number(), published: z.number().nullable(), hostIp: z.string().nullable(), protocol: z.enum(['tcp', 'udp']) }),
  ),
  volumes: z.array(
    z.object({ type: z.enum(['bind', 'volume', 'tmpfs']), source: z.string().nullable(), target: z.string(), readOnly: z.boolean() }),
  ),
  healthcheck: healthcheckSchema.nullable(),
  labels: z.record(z.string(), z.string()),
  stopSignal: z.string(),
  stopGracePeriodMs: z.number(),
  user: z.string().nullable(),
  workingDir: z.string().nullable(),
  readOnly: z.boolean(),
  tmpfs: z.array(z.string()),
  deploy: z.object({
    limits: z.object({ cpus: z.number().nullable(), memoryBytes: z.number().nullable(), pids: z.number().nullable() }),
    restartPolicy: z.object({ condition: z.enum(['none', 'on-failure', 'any']), maxAttempts: z.number().nullable() }),
    update: z.object({ order: z.enum(['start-first', 'stop-first']) }),
  }),
  berth: z.object({ checks: z.array(replicaCheckSchema) }),
});

export type ReplicaSpec = z.infer<typeof replicaSpecSchema>;

export const assignmentSchema = z.object({
  /** `<stack>/<service>/<slot>`: the same id through every revision of the slot. */
  replica: z.string().min(1),
  stack: z.string().min(1),
  service: z.string().min(1),
  slot: z.string().min(1),
  revision: z.number().int().min(1),
  /** `<repository>@<digest>` in the registry the node joined. */
  image: z.string().regex(/^[^@]+@sha256:[a-f0-9]{64}$/, 'a repository@sha256:digest'),
  spec: replicaSpecSchema,
});

export type Assignment = z.infer<typeof assignmentSchema>;

export const assignmentsAnswerSchema = z.object({ version: z.number().int().min(0), assignments: z.array(assignmentSchema) });

export type ReplicaHealth = 'starting' | 'healthy' | 'unhealthy' | 'failed';

export interface ReplicaReport {
  replica: string;
  revision: number;
  health: ReplicaHealth;
  message: string;
}
