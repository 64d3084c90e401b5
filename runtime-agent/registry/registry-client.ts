import type { Readable } from 'node:stream';
import { ACCEPTED_MANIFEST_TYPES } from '../../oci/media-types.js';
import { RegistryAuthenticator, type Credentials } from './registry-auth.js';
import { RegistryError } from './registry-error.js';
import { REQUEST_TIMEOUT_MS, sendToRegistry, streamFromRegistry, type RequestAuthorization } from './registry-transport.js';

/** What the agent needs from a registry: manifests by tag or digest, and blobs from an offset on. */
export interface RegistryClient {
  /** The manifest's exact bytes (digests are computed over them) and its media type. */
  fetchManifest(repository: string, reference: string): Promise<FetchedManifest>;
  /** Streams a blob from `offset` on; `offset` in the answer is where the bytes really start (0 if the registry ignored the Range). */
  fetchBlob(repository: string, digest: string, offset: number): Promise<BlobStream>;
  /** `login`: resolves when the registry (or its token server) accepts the credentials. */
  verifyCredentials(): Promise<void>;
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string | undefined;
}

export interface BlobStream {
  stream: Readable;
  offset: number;
}

export interface RegistryClientOptions {
  /** Hosts (`host[:port]`) reached over plain http; loopback hosts always are. */
  insecureRegistries: readonly string[];
  /** A blob download that receives no byte for this long is aborted (and can then be resumed). */
  stallTimeoutMs: number;
  credentials: Credentials | undefined;
  /** A token the registry already issued (a build job's): sent from the first request on, never exchanged. */
  bearerToken: string | undefined;
}

/** Manifests are small JSON documents; anything bigger is refused rather than buffered. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export function registryBaseUrl(registry: string, insecureRegistries: readonly string[]): string {
  // Docker Hub's API lives on another host than its name.
  if (registry === 'docker.io') return 'https://registry-1.docker.io';
  const insecure = isLoopback(registry) || insecureRegistries.includes(registry);
  return `${insecure ? 'http' : 'https'}://${registry}`;
}

function isLoopback(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(0, registry.indexOf(']') + 1) : (registry.split(':')[0] ?? '');
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The distribution-spec HTTP API of one registry host, with docker's auth handshake. */
export class HttpRegistryClient implements RegistryClient {
  private readonly baseUrl: string;
  private readonly auth: RegistryAuthenticator;
  private readonly stallTimeoutMs: number;
  private readonly bearer: string | undefined;

  constructor(registry: string, options: RegistryClientOptions) {
    this.baseUrl = registryBaseUrl(registry, options.insecureRegistries);
    this.auth = new RegistryAuthenticator(options.credentials);
    this.stallTimeoutMs = options.stallTimeoutMs;
    this.bearer = options.bearerToken === undefined ? undefined : `Bearer ${options.bearerToken}`;
  }

  async fetchManifest(repository: string, reference: string): Promise<FetchedManifest> {
    const response = await this.send(repository, `/v2/${repository}/manifests/${reference}`, {
      Accept: ACCEPTED_MANIFEST_TYPES.join(', '),
    });
    await expectOk(response, `manifest ${repository}:${reference}`, [200]);
    const declared = Number(response.headers.get('content-length'));
    if (declared > MAX_MANIFEST_BYTES) {
      await response.body?.cancel();
      throw new RegistryError(response.status, `manifest ${reference} is ${declared} bytes, more than the ${MAX_MANIFEST_BYTES} accepted`);
    }
    const bytes = Buffer.from(await response.arrayBuffer());
    if (bytes.length > MAX_MANIFEST_BYTES) throw new RegistryError(response.status, `manifest ${reference} is too large`);
    return { bytes, mediaType: response.headers.get('content-type')?.split(';')[0]?.trim() || undefined };
  }

  async fetchBlob(repository: string, digest: string, offset: number): Promise<BlobStream> {
    const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
    const path = `/v2/${repository}/blobs/${digest}`;
    const response = await streamFromRegistry(this.baseUrl, path, headers, this.authorizationIn(repository), this.stallTimeoutMs);
    const status = response.statusCode ?? 0;
    if (status === 416) {
      // The partial file is not a prefix the registry recognizes: start over.
      response.resume();
      return this.fetchBlob(repository, digest, 0);
    }
    if (status !== 200 && status !== 206) throw registryFailure(status, await leadingText(response), `blob ${digest}`);
    const servedFrom = status === 206 ? contentRangeStart(response.headers['content-range'] ?? null) : 0;
    return { stream: response, offset: servedFrom };
  }

  async verifyCredentials(): Promise<void> {
    try {
      await this.probeWithCredentials();
    } catch (error) {
      if (error instanceof RegistryError && error.status === 401)
        throw new RegistryError(401, 'unauthorized: incorrect username or password');
      throw error;
    }
  }

  private async probeWithCredentials(): Promise<void> {
    const probe = (authorization?: string) =>
      fetch(`${this.baseUrl}/v2/`, {
        headers: authorization ? { Authorization: authorization } : {},
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    const response = await probe();
    await response.body?.cancel();
    if (response.ok) return;
    if (response.status !== 401) throw new RegistryError(response.status, `${this.baseUrl}/v2/ answered ${response.status}`);
    if ((await this.auth.login(response.headers.get('www-authenticate'))) === 'token') return;
    const retried = await probe(this.auth.authorization(''));
    await retried.body?.cancel();
    if (!retried.ok) throw new RegistryError(retried.status, `${this.baseUrl}/v2/ answered ${retried.status}`);
  }

  /** A GET in `repository`, authorized for pulling from it (see sendToRegistry). */
  private send(repository: string, path: string, headers: Record<string, string>): Promise<Response> {
    return sendToRegistry(
      this.baseUrl,
      { method: 'GET', target: path, headers, body: undefined, deadline: 'timeout' },
      this.authorizationIn(repository),
    );
  }

  /** Pulling from `repository`: a build's bearer token as it is, or the answers to the registry's challenges. */
  private authorizationIn(repository: string): RequestAuthorization {
    return {
      current: () => this.bearer ?? this.auth.authorization(repository),
      answer: async (challenge) => {
        if (this.bearer) return false;
        await this.auth.answer(challenge, repository);
        return true;
      },
    };
  }
}

async function expectOk(response: Response, what: string, statuses: number[]): Promise<void> {
  if (statuses.includes(response.status)) return;
  throw registryFailure(response.status, (await response.text().catch(() => '')).slice(0, ERROR_TEXT_CHARS), what);
}

function registryFailure(status: number, text: string, what: string): RegistryError {
  const reason = status === 404 ? 'not found' : status === 401 ? 'unauthorized' : `HTTP ${status}`;
  return new RegistryError(status, `${what}: ${reason}${text.trim() ? ` (${text.trim()})` : ''}`);
}

/** How much of an error's body is quoted in its message. */
const ERROR_TEXT_CHARS = 500;

/** The start of an error answer's body, for its message; the rest is not read. */
async function leadingText(response: Readable): Promise<string> {
  let text = '';
  try {
    for await (const chunk of response) {
      text += String(chunk);
      if (text.length >= ERROR_TEXT_CHARS) break;
    }
  } catch {
    // The status says what went wrong; the body only adds to it.
  }
  response.destroy();
  return text.slice(0, ERROR_TEXT_CHARS);
}

function contentRangeStart(header: string | null): number {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header ?? '');
  if (!match) throw new RegistryError(206, `partial content with an unreadable Content-Range ${JSON.stringify(header)}`);
  return Number(match[1]);
}
