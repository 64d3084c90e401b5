import path from 'node:path';
import { z } from 'zod';
import { loadConfig as loadValidated, REGISTRY_ENV, type ConfigSources, type FlagValues } from '../platform/config.js';
import { buildsSchema } from './builds/build-config.js';
import { deploySchema } from './deploy/deploy-config.js';
import { redisConfigSchema } from './redis/redis-config.js';
import { webhooksSchema } from './webhooks/webhook-config.js';

const MiB = 1024 * 1024;
const KiB = 1024;

// S3 rejects multipart parts below 5 MiB (except the last) and above 5 GiB.
const s3Schema = z
  .object({
    bucket: z.string().min(1),
    region: z.string().min(1).default('us-east-1'),
    /** An S3-compatible server's URL; unset means AWS. */
    endpoint: z.string().url().optional(),
    forcePathStyle: z.boolean().default(false),
    /** Every key starts with this, so one bucket can hold several registries. */
    prefix: z
      .string()
      .regex(/^[^/].*[^/]$|^[^/]?$/, 'must not start or end with /')
      .default(''),
    /** Unset: the SDK's default chain (environment, shared config, instance or task role). */
    credentials: z
      .object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1), sessionToken: z.string().min(1).optional() })
      .strict()
      .optional(),
    partSize: z
      .number()
      .int()
      .min(5 * MiB)
      .max(5 * 1024 * MiB)
      .default(10 * MiB),
    redirect: z
      .object({
        enabled: z.boolean().default(true),
        // SigV4 presigned URLs are valid for at most 7 days.
        expirySeconds: z.number().int().min(1).max(604800).default(1200),
      })
      .strict()
      .default({ enabled: true, expirySeconds: 1200 }),
    /**
     * Blob bodies the registry streams itself (redirects off) of at least `minBytes` are read as ranged GETs of
     * `partSize`, `concurrency` of them in flight: one GET stream is limited by one connection's rate. Memory per
     * such body is at most (concurrency + 2) x partSize (24 MiB by default). Off by default: against one s3rver it
     * gained nothing measurable and cost that memory per pull (bench/README.md, session 8); it is for S3 endpoints
     * that serve each connection slower than the registry can send.
     */
    rangedReads: z
      .object({
        enabled: z.boolean().default(false),
        minBytes: z
          .number()
          .int()
          .positive()
          .default(64 * MiB),
        partSize: z
          .number()
          .int()
          .min(256 * KiB)
          .max(64 * MiB)
          .default(4 * MiB),
        concurrency: z.number().int().min(2).max(16).default(4),
      })
      .strict()
      .default({ enabled: false, minBytes: 64 * MiB, partSize: 4 * MiB, concurrency: 4 }),
    /** Attempts per S3 call, including the first, with exponential backoff and jitter between them. */
    maxAttempts: z.number().int().min(1).max(20).default(5),
    /** A call whose socket is silent this long is abandoned and retried. */
    requestTimeoutMs: z.number().int().positive().default(30_000),
  })
  .strict();

// Token auth (off by default): the registry issues its own tokens, and may also trust an existing token server.
const authSchema = z
  .object({
    enabled: z.boolean().default(false),
    token: z
      .object({
        issuer: z.string().min(1).default('berth'),
        /** The `service` in challenges and the audience of tokens. */
        service: z.string().min(1).default('berth'),
        /** The token endpoint's public URL; unset: <the URL the client used>/token. */
        realm: z.string().url().optional(),
        algorithm: z.enum(['ES256', 'RS256']).default('ES256'),
        /** A PEM private key; unset: generated on first start as <dataDir>/auth/token-signing-key.pem. */
        signingKey: z.string().min(1).optional(),
        /**
         * PEM public (or private) keys of retired signing keys: tokens they signed are still accepted, and they
         * stay in the JWKS, until those tokens expire; nothing new is signed with them.
         */
        previousKeys: z.array(z.string().min(1, 'must be the path of a PEM key file')).default([]),
        ttlSeconds: z.number().int().min(10).max(86400).default(300),
        refreshTtlSeconds: z
          .number()
          .int()
          .min(60)
          .default(30 * 86400),
        /**
         * How long each replica trusts its cached view of revocations (deleted or changed accounts, removed
         * rules): the most a revoked token keeps working. 0: ask Redis on every request.
         */
        revocationCacheSeconds: z
          .number()
          .min(0)
          .max(60, 'at most 60: a revoked token keeps working this long (default 5; 0 asks Redis on every request)')
          .default(5),
      })
      .strict()
      .prefault({}),
    /** An htpasswd file of bcrypt entries, read at start, alongside the users kept in Redis. */
    htpasswd: z.string().min(1).optional(),
    externalIssuers: z
      .array(
        z
          .object({
            issuer: z.string().min(1),
            /** Unset: auth.token.service. */
            audience: z.string().min(1).optional(),
            /** A JWKS file. */
            jwks: z.string().min(1).optional(),
            /** Where the issuer publishes its JWKS; fetched at start, on an unknown kid, and when older than jwksCacheSeconds. */
            jwksUrl: z
              .string()
              .url('must be the http(s) URL where the issuer publishes its JWKS')
              .refine((url) => /^https?:\/\//.test(url), 'must be an http:// or https:// URL')
              .optional(),
            /** The least time between two fetches of jwksUrl, however many unknown kids turn up. */
            jwksRefreshSeconds: z.number().int().min(1).default(30),
            jwksCacheSeconds: z.number().int().min(1).default(600),
            rootCertBundle: z.string().min(1).optional(),
          })
          .strict()
          .refine(
            (issuer) => issuer.jwks !== undefined || issuer.jwksUrl !== undefined || issuer.rootCertBundle !== undefined,
            'needs its keys: jwks (a JWKS file), jwksUrl (where the issuer publishes its JWKS) or rootCertBundle (a PEM bundle of its signing certificates)',
          ),
      )
      .default([]),
    rateLimit: z
      .object({
        maxFailuresPerAccount: z.number().int().positive().default(5),
        maxFailuresPerAddress: z.number().int().positive().default(20),
        windowSeconds: z.number().int().positive().default(300),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

// Garbage collection (server/gc/). Scheduled runs are off by default: deleting data should be asked for.
const gcSchema = z
  .object({
    /** Seconds between scheduled runs in the registry process; 0: no schedule (run `berth gc` or the admin API). */
    intervalSeconds: z.number().min(0).default(0),
    /** Nothing uploaded, mounted, read or named by a manifest PUT within this long is deleted. Fractions allowed. */
    graceSeconds: z.number().min(0).default(3600),
    /** Upload sessions idle this long are deleted with their bytes. */
    uploadMaxAgeSeconds: z.number().min(0).default(86400),
    /** Also delete manifests no tag reaches (directly, as an index child, or as a referrer of one that is). */
    deleteUntagged: z.boolean().default(false),
    /** Deletion candidates per Lua call (and store deletes in flight); the lease is checked between batches. */
    batchSize: z.number().int().positive().default(64),
    /** Pause after each batch that deleted something, to leave Redis and the store to clients. */
    batchPauseMs: z.number().int().min(0).default(0),
    /** After each page or batch the collector rests this many times as long as it took, leaving Redis and CPU to requests. */
    restRatio: z.number().min(0).default(1.5),
    /** Serve POST /admin/v1/gc. It has no authentication of its own: enable it only on a trusted network. */
    adminApi: z.boolean().default(false),
  })
  .strict()
  .prefault({});

const regexSchema = z.string().refine((pattern) => {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}, 'must be a valid regular expression');

// What pushed manifests may contain beyond the spec's own rules (Distribution's validation.manifests).
const validationSchema = z
  .object({
    manifests: z
      .object({
        /**
         * Descriptor `urls` (foreign and non-distributable layers) must be http:// or https://; if `allow` is
         * not empty a URL must also match one of its regular expressions, and it must match none of `deny`.
         */
        urls: z
          .object({ allow: z.array(regexSchema).default([]), deny: z.array(regexSchema).default([]) })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

// Limits against clients that hold connections open. The process's file descriptor limit bounds every
// socket plus every open upload file: the connection caps must stay well below it.
const httpSchema = z
  .object({
    host: z.string().min(1).default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(5000),
    /** A request whose headers have not all arrived this long after it started is answered 408 and closed. */
    headersTimeoutSeconds: z.number().min(1).default(30),
    /** A socket silent this long (no byte in or out) is closed; a stalled upload then fails and frees its lease. */
    idleTimeoutSeconds: z.number().min(1).default(300),
    keepAliveTimeoutSeconds: z.number().min(1).default(65),
    /**
     * On SIGTERM, requests in flight get this long to finish before their connections are cut: below docker
     * stop's and Kubernetes' default 10 s grace, so the registry still stops its Redis and exits by itself.
     */
    drainTimeoutSeconds: z.number().min(0).default(8),
    /**
     * A request body that delivers fewer than minBytes in any window of windowSeconds (while the registry is
     * waiting for it) is answered 408 and closed. There is no total time limit: a body that keeps moving at
     * this rate is never cut, however large.
     */
    bodyMinRate: z
      .object({
        minBytes: z.number().int().min(1).default(1024),
        windowSeconds: z.number().min(1).default(30),
      })
      .strict()
      .prefault({}),
    /** Open connections in total; over it a new connection is answered 503 and closed. */
    maxConnections: z.number().int().positive().default(4096),
    /** Open connections per client address; over it a new connection is answered 429 and closed. */
    maxConnectionsPerAddress: z.number().int().positive().default(256),
  })
  .strict()
  .prefault({});

// Upload sessions: how many may be open, and how abandoned ones are reclaimed.
const uploadsSchema = z
  .object({
    /** Open upload sessions per repository; a POST over it is answered 429 TOOMANYREQUESTS. */
    maxPerRepository: z.number().int().positive().default(1000),
    /** Open upload sessions per account (per client address for anonymous pushes). */
    maxPerAccount: z.number().int().positive().default(1000),
    purge: z
      .object({
        /** Sessions expire (a Redis TTL) and their bytes are purged; off: sessions live until finished or cancelled. */
        enabled: z.boolean().default(true),
        /** An upload that received no byte this long is abandoned: its session expires and its bytes are purged. */
        maxAgeSeconds: z
          .number()
          .min(1)
          .default(7 * 86400),
        /** Seconds between purges in the registry process (one replica at a time); the first runs soon after start. */
        intervalSeconds: z.number().min(1).default(86400),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

const configSchema = z
  .object({
    dataDir: z.string().min(1).default('./data'),
    http: httpSchema,
    storage: z
      .object({
        driver: z.enum(['filesystem', 's3']).default('filesystem'),
        filesystem: z
          .object({ root: z.string().min(1).optional() })
          .strict()
          .default({}),
        s3: s3Schema.optional(),
        delete: z
          .object({ enabled: z.boolean().default(true) })
          .strict()
          .default({ enabled: true }),
      })
      .strict()
      .refine((storage) => storage.driver !== 's3' || storage.s3 !== undefined, {
        message: 'storage.s3 (at least its bucket) is required when storage.driver is s3',
        path: ['s3'],
      })
      .default({ driver: 'filesystem', filesystem: {}, delete: { enabled: true } }),
    redis: redisConfigSchema,
    limits: z
      .object({
        manifestMaxBytes: z
          .number()
          .int()
          .positive()
          .default(4 * MiB),
        maxPageSize: z.number().int().positive().default(10000),
      })
      .strict()
      .default({ manifestMaxBytes: 4 * MiB, maxPageSize: 10000 }),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        format: z.enum(['json', 'pretty']).default('json'),
      })
      .strict()
      .default({ level: 'info', format: 'json' }),
    auth: authSchema,
    /** Small blobs served from memory; content addressed by digest never changes, so it cannot be stale. */
    cache: z
      .object({
        smallBlobs: z
          .object({
            enabled: z.boolean().default(true),
            /** Larger blobs are always read from the store. */
            maxBlobBytes: z
              .number()
              .int()
              .nonnegative()
              .default(64 * KiB),
            maxTotalBytes: z
              .number()
              .int()
              .nonnegative()
              .default(32 * MiB),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    gc: gcSchema,
    validation: validationSchema,
    uploads: uploadsSchema,
    webhooks: webhooksSchema,
    deploy: deploySchema,
    builds: buildsSchema,
    /** Read-only mode: pulls are served, writes refused; also switchable at /admin/v1/maintenance. */
    maintenance: z
      .object({ readOnly: z.boolean().default(false) })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/**
 * Loads the YAML file (if any), applies BERTH_* environment overrides (BERTH_AGENT_* belongs to the agent)
 * and command-line flags, and validates the result. Overrides use `__` between levels and SNAKE_CASE within
 * a level: BERTH_HTTP__PORT=5001, BERTH_LIMITS__MANIFEST_MAX_BYTES=1048576, BERTH_DATA_DIR=/srv/berth.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  return resolvePaths(loadValidated(configSchema, REGISTRY_ENV, sources));
}

/** The flags of every command that opens the registry's stores: where its data and its Redis are. */
export function locationFlags(options: { dataDir?: string; redisUrl?: string }): FlagValues {
  return { dataDir: { flag: '--data-dir', value: options.dataDir }, 'redis.url': { flag: '--redis-url', value: options.redisUrl } };
}

function resolvePaths(config: Config): Config {
  const dataDir = path.resolve(config.dataDir);
  return {
    ...config,
    dataDir,
    storage: {
      ...config.storage,
      filesystem: { root: path.resolve(dataDir, config.storage.filesystem.root ?? 'storage') },
    },
  };
}
