import { z } from 'zod';
import { isDigest } from './digest.js';

/**
 * Descriptors, image manifests, indexes and image configs as the OCI image spec (and Docker's schema 2)
 * write them. Objects are loose: fields this code does not know are kept, as the spec asks of readers.
 */

export const digestSchema = z.string().refine(isDigest, 'not a digest (sha256:<64 hex> or sha512:<128 hex>)');

export const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
});

const annotationsSchema = z.record(z.string(), z.string());

export const descriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: annotationsSchema.optional(),
  artifactType: z.string().optional(),
  platform: platformSchema.optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});
export type ImageIndex = z.infer<typeof indexSchema>;

const stringList = z.array(z.string()).nullish();

/** An image's HEALTHCHECK as docker writes it: the probe and its durations in nanoseconds (0 or absent: the default). */
export const healthcheckSchema = z.object({
  Test: stringList,
  Interval: z.number().nullish(),
  Timeout: z.number().nullish(),
  StartPeriod: z.number().nullish(),
  StartInterval: z.number().nullish(),
  Retries: z.number().nullish(),
});
export type ImageHealthcheck = z.infer<typeof healthcheckSchema>;

/**
 * The runtime part of an image config (`config` in the OCI image spec); docker writes null for unset fields.
 * Configs are strict objects: only what a container runs with is kept (and stored in its record).
 */
export const runtimeConfigSchema = z.object({
  User: z.string().nullish(),
  Env: stringList,
  Entrypoint: stringList,
  Cmd: stringList,
  WorkingDir: z.string().nullish(),
  StopSignal: z.string().nullish(),
  ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
  Volumes: z.record(z.string(), z.unknown()).nullish(),
  Labels: z.record(z.string(), z.string()).nullish(),
  Healthcheck: healthcheckSchema.nullish(),
  /** SHELL: what runs a CMD-SHELL health check (docker's default /bin/sh -c). */
  Shell: stringList,
});
export type ImageRuntimeConfig = z.infer<typeof runtimeConfigSchema>;

export const imageConfigSchema = z.object({
  created: z.string().optional(),
  config: runtimeConfigSchema.nullish(),
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(digestSchema) }),
});
export type ImageConfig = z.infer<typeof imageConfigSchema>;
