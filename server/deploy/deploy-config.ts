import { z } from 'zod';

/** The deployment control plane's settings (config key `deploy`). */
export const deploySchema = z
  .object({
    /** A node whose heartbeats stop this long is down, and its replicas are placed on other nodes. */
    nodeGraceSeconds: z.number().positive().default(30),
    /** How long `berth node token` tokens can be used to join. */
    joinTokenTtlSeconds: z
      .number()
      .int()
      .positive()
      .default(24 * 3600),
    /** One controller at a time across replicas: a holder silent this long loses the lease. */
    controllerLeaseSeconds: z.number().positive().default(10),
    /** How often the controller checks deadlines and heartbeats besides acting on every event. */
    controllerTickMs: z.number().int().positive().default(1000),
  })
  .strict()
  .prefault({});

export type DeployConfig = z.infer<typeof deploySchema>;
