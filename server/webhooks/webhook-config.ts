import { z } from 'zod';

export const EVENT_ACTIONS = ['push', 'pull', 'delete', 'mount'] as const;
/** Automated builds' events: sent only to endpoints that list them, so a consumer written for registry:2 never sees one. */
export const BUILD_ACTIONS = ['build.started', 'build.succeeded', 'build.failed'] as const;

const endpointSchema = z
  .object({
    /** Names the endpoint's queue in Redis: keep it stable, or events queued under the old name are orphaned. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" and "-" only'),
    url: z.string().url(),
    /** Signs each delivery (X-Berth-Signature-256: sha256=<hex HMAC of the body>). */
    secret: z.string().min(1),
    /** Repository patterns (`*` within a path component, `**` across them); empty: every repository. */
    repositories: z.array(z.string().min(1)).default([]),
    /** Empty: every registry action (push, pull, delete, mount); build actions only when listed. */
    actions: z.array(z.enum([...EVENT_ACTIONS, ...BUILD_ACTIONS])).default([]),
    /** Sent with every delivery, e.g. an Authorization header the receiver wants. */
    headers: z.record(z.string(), z.string()).default({}),
    timeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();

export const webhooksSchema = z
  .object({
    endpoints: z.array(endpointSchema).default([]),
    /** Attempts per event, the first included; then it moves to the endpoint's dead-letter list. */
    maxAttempts: z.number().int().positive().default(10),
    backoff: z
      .object({
        initialMs: z.number().int().positive().default(1_000),
        maxMs: z
          .number()
          .int()
          .positive()
          .default(5 * 60_000),
      })
      .strict()
      .prefault({}),
    /** Delivery attempts kept for GET /admin/v1/webhooks/deliveries. */
    logSize: z.number().int().positive().default(1_000),
  })
  .strict()
  .superRefine((webhooks, ctx) => {
    const names = webhooks.endpoints.map((endpoint) => endpoint.name);
    const repeated = names.find((name, index) => names.indexOf(name) !== index);
    if (repeated) ctx.addIssue({ code: 'custom', message: `endpoint name ${repeated} is used twice`, path: ['endpoints'] });
  })
  .prefault({});

export type WebhooksConfig = z.infer<typeof webhooksSchema>;
export type WebhookEndpoint = WebhooksConfig['endpoints'][number];
export type EventAction = (typeof EVENT_ACTIONS)[number];
export type BuildAction = (typeof BUILD_ACTIONS)[number];
