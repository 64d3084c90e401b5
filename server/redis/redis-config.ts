import { z } from 'zod';

/** `host:port`, as Sentinel and redis-cli name their peers. */
const hostPortSchema = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port, e.g. 10.0.0.5:26379')
  .transform((address) => {
    const split = address.lastIndexOf(':');
    return { host: address.slice(0, split).replace(/^\[|\]$/g, ''), port: Number(address.slice(split + 1)) };
  });

/** TLS towards Redis (and, with sentinels, towards them): PEM files read at start. */
const tlsSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** PEM bundle of the CAs that sign the servers' certificates; unset: Node's default CAs. */
    ca: z.string().min(1).optional(),
    /** A client certificate and its key, for servers that ask for one (tls-auth-clients). */
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** The name the servers' certificates must carry; unset: the host connected to. */
    serverName: z.string().min(1).optional(),
  })
  .strict()
  .refine((tls) => (tls.cert === undefined) === (tls.key === undefined), 'cert and key go together: set both or neither')
  .prefault({});

// Sentinel: the registry asks these for the current primary and follows it through a failover.
const sentinelSchema = z
  .object({
    /** Sentinel addresses, as a list or one comma-separated string (BERTH_REDIS__SENTINEL__SENTINELS=a:26379,b:26379). */
    sentinels: z.preprocess(
      (value) => (typeof value === 'string' ? value.split(',').map((address) => address.trim()) : value),
      z.array(hostPortSchema).min(1, 'name at least one sentinel (three in production: a majority must agree on a failover)'),
    ),
    /** The name the sentinels monitor the primary under (`sentinel monitor <masterName> ...`). */
    masterName: z.string().min(1).default('berth'),
    /** The primary's and replicas' requirepass / ACL user. */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** The sentinels' own requirepass, when they have one. */
    sentinelPassword: z.string().min(1).optional(),
  })
  .strict();

export const redisConfigSchema = z
  .object({
    /** An external Redis; unset (and no sentinel): an embedded redis-server under the data directory. */
    url: z.string().url().optional(),
    sentinel: sentinelSchema.optional(),
    keyPrefix: z.string().default('berth:'),
    tls: tlsSchema,
    embedded: z
      .object({ binary: z.string().min(1).default('redis-server') })
      .strict()
      .default({ binary: 'redis-server' }),
    /**
     * Durable acknowledgement: every write the registry acknowledges to a client waits (Redis WAIT) until this
     * many replicas have it, so a failover cannot take it away; 0 acknowledges on the primary alone.
     */
    minReplicasAcked: z.number().int().min(0).default(0),
    /** How long a write waits for minReplicasAcked replicas before the client gets 503 and retries. */
    ackTimeoutMs: z.number().int().min(1).default(2_000),
    /** How long a request waits for Redis to come back (a failover) before it gets 503 with Retry-After. */
    unavailableWaitMs: z.number().int().min(0).default(5_000),
  })
  .strict()
  .refine((redis) => redis.url === undefined || redis.sentinel === undefined, {
    message: 'set either redis.url (one Redis) or redis.sentinel (a primary found through Sentinel), not both',
  })
  .refine((redis) => redis.minReplicasAcked === 0 || redis.url !== undefined || redis.sentinel !== undefined, {
    message: 'redis.minReplicasAcked needs replicas: the embedded Redis has none (set redis.sentinel or redis.url)',
    path: ['minReplicasAcked'],
  })
  .prefault({});

export type RedisConfig = z.infer<typeof redisConfigSchema>;
