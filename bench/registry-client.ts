import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface BufferedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A minimal OCI distribution client over one keep-alive agent; blob bodies are streamed both ways. */
export class RegistryClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(readonly baseUrl: string) {}

  close(): void {
    this.agent.destroy();
  }

  /** Sends a request and resolves with the response head; the caller consumes the body. */
  request(method: string, target: string | URL, headers: OutgoingHttpHeaders = {}, body?: Buffer | Readable): Promise<IncomingMessage> {
    const url = new URL(target, this.baseUrl);
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: this.agent }, resolve);
      req.once('error', reject);
      if (body instanceof Readable) pipeline(body, req).catch(reject);
      else req.end(body);
    });
  }

  /** Sends a request, reads the (small) response body and checks the status. */
  async send(
    method: string,
    target: string | URL,
    expected: number,
    headers?: OutgoingHttpHeaders,
    body?: Buffer | Readable,
  ): Promise<BufferedResponse> {
    const res = await this.request(method, target, headers, body);
    const parts: Buffer[] = [];
    for await (const part of res) parts.push(part as Buffer);
    const response = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) };
    if (response.status !== expected) {
      throw new Error(`${method} ${target} -> ${response.status} (expected ${expected}): ${response.body.toString('utf8').slice(0, 500)}`);
    }
    return response;
  }

  async startUpload(repository: string): Promise<URL> {
    const res = await this.send('POST', `/v2/${repository}/blobs/uploads/`, 202, { 'Content-Length': '0' });
    return this.location(res);
  }

  /** PUT ?digest= on an upload session, with the (remaining) body or none. */
  async completeUpload(session: URL, digest: string, body?: Buffer | Readable, length = 0): Promise<void> {
    const url = new URL(session);
    url.searchParams.set('digest', digest);
    const headers = { 'Content-Length': String(length), 'Content-Type': 'application/octet-stream' };
    await this.send('PUT', url, 201, headers, length > 0 ? body : undefined);
  }

  /** POST, then the whole blob in one PUT ?digest=. */
  async pushMonolithic(repository: string, digest: string, size: number, body: Buffer | Readable): Promise<void> {
    await this.completeUpload(await this.startUpload(repository), digest, body, size);
  }

  /** POST, one PATCH with Content-Range per chunk, then an empty PUT ?digest=. */
  async pushChunked(
    repository: string,
    digest: string,
    size: number,
    chunkBytes: number,
    chunk: (offset: number, length: number) => Readable,
  ): Promise<void> {
    let session = await this.startUpload(repository);
    for (let offset = 0; offset < size; offset += chunkBytes) {
      const length = Math.min(chunkBytes, size - offset);
      const headers = {
        'Content-Length': String(length),
        'Content-Range': `${offset}-${offset + length - 1}`,
        'Content-Type': 'application/octet-stream',
      };
      session = this.location(await this.send('PATCH', session, 202, headers, chunk(offset, length)));
    }
    await this.completeUpload(session, digest);
  }

  /**
   * Streams a blob, discarding it; resolves with its size and sha256 digest. A redirect (e.g. a 307 to a presigned
   * storage URL) is followed, without the registry's headers, and reported.
   */
  async pullBlob(repository: string, digest: string): Promise<{ bytes: number; digest: string; redirected: boolean }> {
    let res = await this.request('GET', `/v2/${repository}/blobs/${digest}`);
    let redirected = false;
    for (let hops = 0; [301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && res.headers.location && hops < 5; hops += 1) {
      res.resume();
      res = await this.request('GET', new URL(res.headers.location, this.baseUrl));
      redirected = true;
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`GET blob ${digest} -> ${res.statusCode}`);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const part of res) {
      bytes += (part as Buffer).length;
      hash.update(part as Buffer);
    }
    return { bytes, digest: `sha256:${hash.digest('hex')}`, redirected };
  }

  async putManifest(repository: string, reference: string, mediaType: string, manifest: Buffer): Promise<void> {
    const headers = { 'Content-Type': mediaType, 'Content-Length': String(manifest.length) };
    await this.send('PUT', `/v2/${repository}/manifests/${reference}`, 201, headers, manifest);
  }

  private location(res: BufferedResponse): URL {
    const location = res.headers.location;
    if (!location) throw new Error(`response ${res.status} has no Location header`);
    return new URL(location, this.baseUrl);
  }
}
