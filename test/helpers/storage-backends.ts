import { access, mkdir, writeFile } from 'node:fs/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import path from 'node:path';
import { RegistryProcess, type RegistryOptions } from './registry-process.js';
import { S3Server, type RegistryS3Options, type S3ServerOptions } from './s3-server.js';

/** A kind of blob storage a registry can run on, with a view of what the registry left in it. */
export interface StorageBackend {
  readonly name: string;
  /** A registry on this storage; pass `dataDir` to restart over the same metadata. */
  startRegistry(options?: RegistryOptions): Promise<RegistryProcess>;
  /** Whatever an upload left in storage: its bytes, segments, or open multipart uploads for `digests`. */
  uploadLeftovers(registry: RegistryProcess, uploadId: string, digests: string[]): Promise<string[]>;
  /** Whether the blob's bytes are in storage (whatever the metadata says). */
  hasBlob(registry: RegistryProcess, digest: string): Promise<boolean>;
  /** Puts `bytes` at the digest's address behind the registry's back (as a crash or an old bug could have). */
  plantBlob(registry: RegistryProcess, digest: string, bytes: Buffer): Promise<void>;
  stop(): Promise<void>;
}

export function filesystemBackend(): StorageBackend {
  const storage = (registry: RegistryProcess, ...parts: string[]) => path.join(registry.dataDir, 'storage', ...parts);
  return {
    name: 'filesystem',
    startRegistry: (options) => RegistryProcess.start(options),
    uploadLeftovers: async (registry, uploadId) => ((await exists(storage(registry, 'uploads', uploadId))) ? [uploadId] : []),
    hasBlob: (registry, digest) => exists(storage(registry, 'blobs', 'sha256', hex(digest).slice(0, 2), hex(digest))),
    plantBlob: async (registry, digest, bytes) => {
      await mkdir(storage(registry, 'blobs', 'sha256', hex(digest).slice(0, 2)), { recursive: true });
      await writeFile(storage(registry, 'blobs', 'sha256', hex(digest).slice(0, 2), hex(digest)), bytes);
    },
    stop: async () => undefined,
  };
}

/** S3 storage on its own s3rver, started on first use. */
export function s3Backend(name: string, options: RegistryS3Options = {}, serverOptions: S3ServerOptions = {}): StorageBackend {
  let server: Promise<S3Server> | undefined;
  const s3 = () => (server ??= S3Server.start(serverOptions));
  return {
    name,
    startRegistry: async (registryOptions = {}) =>
      RegistryProcess.start({ ...registryOptions, env: { ...(await s3()).registryEnv(options), ...registryOptions.env } }),
    uploadLeftovers: async (_registry, uploadId, digests) => {
      const started = await s3();
      const blobKeys = new Set(digests.map(blobKey));
      const segments = await started.keys(`_uploads/${uploadId}/`);
      const multipart = (await started.openMultipartUploads())
        .filter((key) => blobKeys.has(key))
        .map((key) => `multipart upload of ${key}`);
      return [...segments, ...multipart];
    },
    hasBlob: async (_registry, digest) => (await (await s3()).keys(blobKey(digest))).length > 0,
    plantBlob: async (_registry, digest, bytes) => {
      const client = (await s3()).client();
      try {
        await client.send(
          new PutObjectCommand({ Bucket: (await s3()).registryEnv().BERTH_STORAGE__S3__BUCKET, Key: blobKey(digest), Body: bytes }),
        );
      } finally {
        client.destroy();
      }
    },
    stop: async () => (await server)?.stop(),
  };
}

export function blobKey(digest: string): string {
  return `blobs/sha256/${hex(digest).slice(0, 2)}/${hex(digest)}`;
}

function hex(digest: string): string {
  return digest.slice('sha256:'.length);
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
