import type { Readable } from 'node:stream';
import { RegistryAuthenticator, type Credentials } from './registry-auth.js';
import { registryBaseUrl } from './registry-client.js';
import { RegistryError } from './registry-error.js';
import { sendToRegistry } from './registry-transport.js';

/** The push half of the distribution API for one repository of one registry. */
export interface UploadClient {
  /** Whether the registry already has the blob in this repository (HEAD, nothing uploaded). */
  hasBlob(digest: string): Promise<boolean>;
  /** Cross-repository mount from `fromRepository` of the same registry; false when the registry declined. */
  mountBlob(digest: string, fromRepository: string): Promise<boolean>;
  /** Streams the blob (POST, one PATCH with the stream, PUT ?digest=): never held in memory. */
  uploadBlob(digest: string, content: Readable): Promise<void>;
  /** A small blob (a config) in one request, a POST ?digest= with its bytes; a PUT of them where the registry wants a session first. */
  uploadSmallBlob(digest: string, bytes: Buffer): Promise<void>;
  putManifest(reference: string, mediaType: string, bytes: Buffer): Promise<string>;
}

export interface UploadClientOptions {
  insecureRegistries: readonly string[];
  credentials: Credentials | undefined;
  /** Another repository of this registry whose blobs may be mounted: its pull scope joins the token. */
  mountSource: string | undefined;
  /** A token the registry already issued for this push (a build job's): sent from the first request on. */
  bearerToken: string | undefined;
}

/**
 * docker's push protocol: a token with `pull,push` on the target (and `pull` on a mount source) is asked for
 * on the first 401 and reused. A blob is uploaded as docker does (a session, the bytes in one chunked PATCH,
 * a PUT with the digest), which every registry takes, where a monolithic PUT needs a known Content-Length.
 */
export class HttpUploadClient implements UploadClient {
  private readonly baseUrl: string;
  private readonly auth: RegistryAuthenticator;
  private readonly scopes: string[];
  private authorization: string | undefined;

  constructor(
    registry: string,
    private readonly repository: string,
    options: UploadClientOptions,
  ) {
    this.baseUrl = registryBaseUrl(registry, options.insecureRegistries);
    this.auth = new RegistryAuthenticator(options.credentials);
    this.scopes = [`repository:${repository}:pull,push`, ...(options.mountSource ? [`repository:${options.mountSource}:pull`] : [])];
    this.authorization = options.bearerToken === undefined ? undefined : `Bearer ${options.bearerToken}`;
  }

  async hasBlob(digest: string): Promise<boolean> {
    const response = await this.send('HEAD', `/v2/${this.repository}/blobs/${digest}`);
    if (response.status === 200 || response.status === 404) {
      await response.body?.cancel();
      return response.status === 200;
    }
    throw await failure(response, `push to ${this.repository}`);
  }

  async mountBlob(digest: string, fromRepository: string): Promise<boolean> {
    const query = new URLSearchParams({ mount: digest, from: fromRepository });
    const response = await this.send('POST', `/v2/${this.repository}/blobs/uploads/?${query}`);
    await response.body?.cancel();
    if (response.status === 201) return true;
    if (response.status === 202) return false;
    throw await failure(response, `mount of ${digest} from ${fromRepository}`);
  }

  async uploadBlob(digest: string, content: Readable): Promise<void> {
    const started = await this.send('POST', `/v2/${this.repository}/blobs/uploads/`);
    await started.body?.cancel();
    if (started.status !== 202) throw await failure(started, `upload of ${digest}`);
    const patched = await this.send('PATCH', this.location(started), {
      headers: { 'Content-Type': 'application/octet-stream' },
      body: content,
      timeout: false,
    });
    if (patched.status !== 202) throw await failure(patched, `upload of ${digest}`);
    await patched.body?.cancel();
    const location = new URL(this.location(patched), this.baseUrl);
    location.searchParams.set('digest', digest);
    const committed = await this.send('PUT', location.toString());
    if (committed.status !== 201) throw await failure(committed, `upload of ${digest}`);
    await committed.body?.cancel();
  }

  async uploadSmallBlob(digest: string, bytes: Buffer): Promise<void> {
    const headers = { 'Content-Type': 'application/octet-stream' };
    const posted = await this.send('POST', `/v2/${this.repository}/blobs/uploads/?${new URLSearchParams({ digest })}`, {
      headers,
      body: bytes,
    });
    await posted.body?.cancel();
    if (posted.status === 201) return;
    // The distribution spec lets a registry answer a single POST as the start of a session: the bytes go in its PUT.
    if (posted.status !== 202) throw await failure(posted, `upload of ${digest}`);
    const location = new URL(this.location(posted), this.baseUrl);
    location.searchParams.set('digest', digest);
    const committed = await this.send('PUT', location.toString(), { headers, body: bytes });
    if (committed.status !== 201) throw await failure(committed, `upload of ${digest}`);
    await committed.body?.cancel();
  }

  async putManifest(reference: string, mediaType: string, bytes: Buffer): Promise<string> {
    const response = await this.send('PUT', `/v2/${this.repository}/manifests/${reference}`, {
      headers: { 'Content-Type': mediaType },
      body: bytes,
    });
    if (response.status !== 201) throw await failure(response, `manifest ${this.repository}:${reference}`);
    await response.body?.cancel();
    return response.headers.get('docker-content-digest') ?? '';
  }

  private location(response: Response): string {
    const location = response.headers.get('location');
    if (!location) throw new RegistryError(response.status, 'upload session without a Location');
    return location;
  }

  /** One request authorized for the push's scopes (see sendToRegistry). */
  private send(
    method: string,
    target: string,
    options: { headers?: Record<string, string>; body?: Buffer | Readable; timeout?: boolean } = {},
  ): Promise<Response> {
    return sendToRegistry(
      this.baseUrl,
      { method, target, headers: options.headers ?? {}, body: options.body, deadline: options.timeout === false ? 'none' : 'timeout' },
      {
        current: () => this.authorization,
        answer: async (challenge) => {
          this.authorization = await this.auth.authorizationFor(challenge, this.scopes);
          return true;
        },
      },
    );
  }
}

async function failure(response: Response, what: string): Promise<RegistryError> {
  const text = (await response.text().catch(() => '')).slice(0, 500).trim();
  const reason =
    response.status === 401 || response.status === 403 ? 'denied: requested access to the resource is denied' : `HTTP ${response.status}`;
  return new RegistryError(response.status, `${what}: ${reason}${text ? ` (${text})` : ''}`);
}
