#!/usr/bin/env node
/**
 * s3rver through the test helper (test/helpers/s3-server.ts), as a process of its own for bench/s3-bench.ts, so that it
 * shares no event loop with the benchmark's client. Prints `s3rver ready <BERTH_* env as JSON>` once listening; stops
 * (and removes its directory) on SIGTERM.
 *
 * Adds ListParts (GET <key>?uploadId=), which s3rver 3.7 answers 405 and Distribution 2.8 calls whenever it resumes an
 * upload (every PATCH after the first, and the final PUT), over s3rver's upload layout: uploads/<id>/<part>(.md5).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from 'koa';
import S3rver from 's3rver';
import { S3Server } from '../test/helpers/s3-server.js';

// Koa composes its middleware when it starts listening, so the operation is added as S3Server.start runs the server.
const run = S3rver.prototype.run;
S3rver.prototype.run = function (this: S3rver, ...args: Parameters<S3rver['run']>) {
  this.middleware.unshift(listParts(this));
  return run.apply(this, args);
};
const s3 = await S3Server.start();
process.once('SIGTERM', () => void s3.stop().finally(() => process.exit(0)));
process.stdout.write(`s3rver ready ${JSON.stringify(s3.registryEnv())}\n`);

function listParts(server: S3rver) {
  return async (ctx: Context, next: () => Promise<void>) => {
    const uploadId = typeof ctx.query.uploadId === 'string' ? ctx.query.uploadId : undefined;
    if (ctx.method !== 'GET' || !uploadId) return next();
    const [, bucket = '', ...keyParts] = decodeURIComponent(ctx.path).split('/');
    const directory = path.join(server.store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    const numbers = (await readdir(directory))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
    const parts = await Promise.all(
      numbers.map(async (number) => {
        const file = path.join(directory, String(number));
        const [info, md5] = await Promise.all([stat(file), readFile(`${file}.md5`, 'utf8')]);
        return `<Part><PartNumber>${number}</PartNumber><LastModified>${info.mtime.toISOString()}</LastModified><ETag>"${md5}"</ETag><Size>${info.size}</Size></Part>`;
      }),
    );
    ctx.type = 'application/xml';
    ctx.body =
      `<?xml version="1.0" encoding="UTF-8"?><ListPartsResult><Bucket>${bucket}</Bucket><Key>${keyParts.join('/')}</Key><UploadId>${uploadId}</UploadId>` +
      `<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>${numbers.at(-1) ?? 0}</NextPartNumberMarker><MaxParts>10000</MaxParts>` +
      `<IsTruncated>false</IsTruncated>${parts.join('')}</ListPartsResult>`;
  };
}
