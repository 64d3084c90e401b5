import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'koa';
import S3rver from 's3rver';

const BUCKET = 'berth';
// s3rver's fixed development key pair.
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const MiB = 1024 * 1024;

export interface S3ServerOptions {
  /** Answer UploadPartCopy as S3 does (default), or 501 NotImplemented as plain s3rver does. */
  uploadPartCopy?: boolean;
}

export interface RegistryS3Options {
  /** Where the registry sends S3 calls (a fault proxy); the server itself by default. */
  endpoint?: string;
  redirect?: boolean;
  partSize?: number;
  prefix?: string;
  maxAttempts?: number;
  requestTimeoutMs?: number;
  /** Proxied blob bodies of at least minBytes read as ranged GETs (storage.s3.rangedReads); off when absent. */
  rangedReads?: { minBytes: number; partSize: number; concurrency: number };
}

/**
 * s3rver (an S3 API server on the filesystem) on a free port with its own temp directory, in this process.
 * s3rver 3.7 lacks three S3 operations the registry (or the tests) use; they are added here over its own
 * upload layout: AbortMultipartUpload, ListMultipartUploads and UploadPartCopy (the last switchable, to test
 * the registry on servers without it).
 */
export class S3Server {
  private constructor(
    private readonly server: S3rver,
    private readonly directory: string,
    readonly port: number,
  ) {}

  static async start(options: S3ServerOptions = {}): Promise<S3Server> {
    const directory = await mkdtemp(path.join(tmpdir(), 'berth-s3-'));
    const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: BUCKET }] });
    server.middleware.unshift(missingOperations(server, options.uploadPartCopy ?? true));
    const address = await server.run();
    return new S3Server(server, directory, address.port);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** BERTH_* variables that point a registry at this server. */
  registryEnv(options: RegistryS3Options = {}): Record<string, string> {
    return {
      BERTH_STORAGE__DRIVER: 's3',
      BERTH_STORAGE__S3__BUCKET: BUCKET,
      BERTH_STORAGE__S3__ENDPOINT: options.endpoint ?? this.endpoint,
      BERTH_STORAGE__S3__FORCE_PATH_STYLE: 'true',
      BERTH_STORAGE__S3__CREDENTIALS__ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      BERTH_STORAGE__S3__CREDENTIALS__SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      BERTH_STORAGE__S3__PART_SIZE: String(options.partSize ?? 5 * MiB),
      BERTH_STORAGE__S3__REDIRECT__ENABLED: String(options.redirect ?? true),
      ...(options.prefix ? { BERTH_STORAGE__S3__PREFIX: options.prefix } : {}),
      ...(options.maxAttempts ? { BERTH_STORAGE__S3__MAX_ATTEMPTS: String(options.maxAttempts) } : {}),
      ...(options.requestTimeoutMs ? { BERTH_STORAGE__S3__REQUEST_TIMEOUT_MS: String(options.requestTimeoutMs) } : {}),
      ...(options.rangedReads
        ? {
            BERTH_STORAGE__S3__RANGED_READS__ENABLED: 'true',
            BERTH_STORAGE__S3__RANGED_READS__MIN_BYTES: String(options.rangedReads.minBytes),
            BERTH_STORAGE__S3__RANGED_READS__PART_SIZE: String(options.rangedReads.partSize),
            BERTH_STORAGE__S3__RANGED_READS__CONCURRENCY: String(options.rangedReads.concurrency),
          }
        : {}),
    };
  }

  client(): S3Client {
    return new S3Client({ region: 'us-east-1', endpoint: this.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
  }

  /** Every object key under `prefix`. */
  async keys(prefix = ''): Promise<string[]> {
    const client = this.client();
    try {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
        keys.push(...(page.Contents ?? []).map((entry) => entry.Key ?? ''));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys;
    } finally {
      client.destroy();
    }
  }

  /** The keys of multipart uploads started and neither completed nor aborted. */
  async openMultipartUploads(): Promise<string[]> {
    const client = this.client();
    try {
      const listing = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      return (listing.Uploads ?? []).map((upload) => upload.Key ?? '');
    } finally {
      client.destroy();
    }
  }

  async stop(): Promise<void> {
    await this.server.close();
    await rm(this.directory, { recursive: true, force: true });
  }
}

/** Koa middleware answering the S3 operations s3rver 3.7 lacks; everything else goes on to s3rver. */
function missingOperations(server: S3rver, uploadPartCopy: boolean) {
  const uploadsDir = (bucket: string) => server.store.getResourcePath(bucket, undefined, 'uploads');
  return async (ctx: Context, next: () => Promise<void>) => {
    const [, bucket = '', ...keyParts] = decodeURIComponent(ctx.path).split('/');
    const key = keyParts.join('/');
    const uploadId = typeof ctx.query.uploadId === 'string' ? ctx.query.uploadId : undefined;
    if (ctx.method === 'GET' && key === '' && 'uploads' in ctx.query) {
      ctx.type = 'application/xml';
      ctx.body = await listUploadsXml(bucket, uploadsDir(bucket));
    } else if (ctx.method === 'DELETE' && uploadId) {
      await rm(path.join(uploadsDir(bucket), uploadId), { recursive: true, force: true });
      ctx.status = 204;
    } else if (ctx.method === 'PUT' && uploadId && ctx.get('x-amz-copy-source') && uploadPartCopy) {
      ctx.type = 'application/xml';
      ctx.body = await copyPart(
        server,
        bucket,
        uploadId,
        Number(ctx.query.partNumber),
        ctx.get('x-amz-copy-source'),
        ctx.get('x-amz-copy-source-range'),
      );
    } else {
      await next();
    }
  };
}

async function listUploadsXml(bucket: string, directory: string): Promise<string> {
  const ids = await readdir(directory).catch(() => [] as string[]);
  const uploads = await Promise.all(
    ids.map(
      async (id) => `<Upload><Key>${await readFile(path.join(directory, id, 'key'), 'utf8')}</Key><UploadId>${id}</UploadId></Upload>`,
    ),
  );
  return `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${bucket}</Bucket>${uploads.join('')}<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`;
}

async function copyPart(
  server: S3rver,
  bucket: string,
  uploadId: string,
  partNumber: number,
  source: string,
  rangeHeader: string,
): Promise<string> {
  const [sourceBucket = '', ...sourceKey] = decodeURIComponent(source.replace(/^\//, '')).split('/');
  const [start, end] = (/^bytes=(\d+)-(\d+)$/.exec(rangeHeader) ?? []).slice(1).map(Number);
  const object = await server.store.getObject(sourceBucket, sourceKey.join('/'), start === undefined ? undefined : { start, end: end! });
  if (!object) throw new Error(`UploadPartCopy: no source object ${source}`);
  const { md5 } = await server.store.putPart(bucket, uploadId, partNumber, object.content);
  return `<?xml version="1.0" encoding="UTF-8"?><CopyPartResult><ETag>"${md5}"</ETag></CopyPartResult>`;
}
