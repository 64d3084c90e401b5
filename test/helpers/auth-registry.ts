import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './exec.js';
import { request } from './http-client.js';
import { imageManifest, makeBlob, type Blob, type Manifest } from './oci-content.js';
import { RegistryProcess, type RegistryOptions } from './registry-process.js';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

export const ADMIN = { username: 'admin', password: 'admin-password-1' };

export interface Credentials {
  username: string;
  password: string;
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

export function basic({ username, password }: Credentials): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function registryCli(registry: RegistryProcess, args: string[], options: { input?: string; allowFailure?: boolean }): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args, '--data-dir', registry.dataDir], options);
}

/** Makes the ADMIN account on a registry with auth on, with the CLI, as an operator bootstraps one. */
export async function addAdmin(registry: RegistryProcess): Promise<void> {
  await registryCli(registry, ['user', 'add', ADMIN.username, '--admin'], { input: ADMIN.password });
}

/**
 * A `berth serve` with auth on and an admin made with the CLI (as an operator bootstraps one); everything
 * else is set up through the admin API, as an admin would.
 */
export class AuthRegistry {
  private constructor(readonly process: RegistryProcess) {}

  static async start(options: RegistryOptions = {}): Promise<AuthRegistry> {
    const registry = await RegistryProcess.start({ ...options, env: { BERTH_AUTH__ENABLED: 'true', ...options.env } });
    await addAdmin(registry);
    return new AuthRegistry(registry);
  }

  get host(): string {
    return this.process.host;
  }

  get url(): string {
    return this.process.url;
  }

  /** `berth <args>` against this registry's data directory. */
  cli(args: string[], options: { input?: string; allowFailure?: boolean } = {}): Promise<RunResult> {
    return registryCli(this.process, args, options);
  }

  /** An admin API call; throws unless it succeeds. */
  async admin<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await request(this.url, `/admin/v1${path}`, {
      method,
      headers: { Authorization: basic(ADMIN), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async addUser(username: string, password: string, options: { groups?: string[]; admin?: boolean } = {}): Promise<Credentials> {
    await this.admin('PUT', `/users/${username}`, { password, ...options });
    return { username, password };
  }

  async addRobot(name: string, options: { expiresAt?: string; groups?: string[] } = {}): Promise<Credentials> {
    const created = await this.admin<{ username: string; secret: string }>('POST', '/robots', { name, ...options });
    return { username: created.username, password: created.secret };
  }

  async grant(subject: string, repositories: string, actions: string[]): Promise<void> {
    await this.admin('POST', '/permissions', { subject, repositories, actions });
  }

  /** GET /token as docker sends it; anonymous without credentials. */
  tokenRequest(scopes: string[], credentials?: Credentials, extra: Record<string, string> = {}): Promise<Response> {
    const query = new URLSearchParams({ service: 'berth', ...extra });
    for (const scope of scopes) query.append('scope', scope);
    return request(this.url, `/token?${query}`, { headers: credentials ? { Authorization: basic(credentials) } : {} });
  }

  async token(scopes: string[], credentials?: Credentials): Promise<string> {
    const response = await this.tokenRequest(scopes, credentials);
    if (!response.ok) throw new Error(`token request failed: ${response.status} ${await response.text()}`);
    return ((await response.json()) as TokenResponse).token;
  }

  destroy(): Promise<void> {
    return this.process.destroy();
  }
}

/** Pushes a one-blob image with a Bearer token (blob monolithically, then the manifest); throws unless both succeed. */
export async function pushImageWithToken(
  baseUrl: string,
  token: string,
  repository: string,
  tag: string,
): Promise<{ blob: Blob; manifest: Manifest }> {
  const blob = makeBlob();
  const headers = { Authorization: `Bearer ${token}` };
  const posted = await request(baseUrl, `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, {
    method: 'POST',
    headers,
    body: blob.bytes,
  });
  if (posted.status !== 201) throw new Error(`blob push to ${repository}: ${posted.status} ${await posted.text()}`);
  const manifest = imageManifest({ config: blob });
  const put = await request(baseUrl, `/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': manifest.mediaType },
    body: manifest.bytes,
  });
  if (put.status !== 201) throw new Error(`manifest push to ${repository}: ${put.status} ${await put.text()}`);
  return { blob, manifest };
}
