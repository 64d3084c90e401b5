import { z } from 'zod';

/** Automated builds (config key `builds`). */
export const buildsSchema = z
  .object({
    /** A webhook body larger than this is refused (413) unread; GitHub's pushes are far below it. */
    maxWebhookBytes: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024),
    /** How long a delivery id is remembered: a redelivery within it builds nothing twice. */
    deliveryMemorySeconds: z
      .number()
      .int()
      .positive()
      .default(7 * 86400),
    /** A worker that has not renewed its job's lease this long is gone: the job goes back to the queue. */
    leaseSeconds: z.number().positive().default(30),
    /** How long a worker's claim request waits for a job before answering 204. */
    claimWaitSeconds: z.number().int().min(0).max(60).default(20),
    /** Finished builds and their logs are kept this long. */
    retentionDays: z.number().positive().default(30),
    /** Log lines kept per build (the first ones; a note says when the rest was dropped). */
    maxLogLines: z.number().int().positive().default(20_000),
    /** How long `berth build worker-token` tokens are valid. */
    workerTokenTtlSeconds: z
      .number()
      .int()
      .positive()
      .default(365 * 86400),
  })
  .strict()
  .prefault({});

export type BuildsConfig = z.infer<typeof buildsSchema>;
