import { z } from 'zod';

/**
 * `POST /v1/build`: the body is one line of JSON (these options), then the build context as a tar. The
 * answer streams BuildEvents as NDJSON, the last one `done` or `error`.
 */
export const buildOptionsSchema = z.object({
  /** The Dockerfile's text, or its path inside the context (a context sent as a tar on stdin). */
  dockerfile: z.object({ content: z.string().optional(), path: z.string().default('Dockerfile') }),
  tags: z.array(z.string()).default([]),
  /**
   * A directory on the agent's host to read as the context, instead of a tar after the options line: the CLI
   * on the same host sends its path (nothing to pack, send and unpack, and file digests can be kept between
   * builds). Only root talks to the daemon's socket, and root can read the directory anyway.
   */
  contextPath: z.string().startsWith('/').optional(),
  buildArgs: z.record(z.string(), z.string()).default({}),
  target: z.string().optional(),
  noCache: z.boolean().default(false),
  labels: z.record(z.string(), z.string()).default({}),
  /** Secret values (base64), for RUN --mount=type=secret only. */
  secrets: z.array(z.object({ id: z.string().min(1), value: z.string() })).default([]),
  /** Registry repositories (`host/repo:tag`) whose build cache this build may use. */
  cacheFrom: z.array(z.string().min(1)).default([]),
  /** The registry repository (`host/repo:tag`) this build's whole cache is exported to. */
  cacheTo: z.string().min(1).optional(),
  /** Push the image under every tag once built. */
  push: z.boolean().default(false),
  /** The image manifest's media types: OCI's, or docker's (v2s2) for clients and registries that want those. */
  mediaTypes: z.enum(['oci', 'docker']).default('oci'),
  /** RUN's network unless a RUN names its own. */
  network: z.enum(['default', 'none', 'host']).default('default'),
  pull: z.boolean().default(false),
  /** `os/architecture[/variant]`; only the agent's own platform (or one it runs natively) builds. */
  platform: z.string().min(1).optional(),
});
export type BuildOptions = z.input<typeof buildOptionsSchema>;
export type ParsedBuildOptions = z.output<typeof buildOptionsSchema>;

/** The options line and the secrets in it are read whole; the context after it is streamed. */
export const MAX_BUILD_OPTIONS_BYTES = 4 * 1024 * 1024;
