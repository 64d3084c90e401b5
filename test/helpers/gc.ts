import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readBytes, request } from './http-client.js';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import type { GcReport } from '../../server/gc/collector.js';
import type { RegistryProcess } from './registry-process.js';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

/** What a garbage collection run reports: the admin API answers the collector's report as JSON. */
export type { GcReport };

/** BERTH_* settings for a registry whose collector may be run through the admin API, with a short grace. */
export function gcEnv(graceSeconds: number, extra: Record<string, string> = {}): Record<string, string> {
  return { BERTH_GC__ADMIN_API: 'true', BERTH_GC__GRACE_SECONDS: String(graceSeconds), ...extra };
}

/** POST /admin/v1/gc; throws unless a report comes back (409: another run holds the lease). */
export async function collectGarbage(registry: RegistryProcess, options: { dryRun?: boolean } = {}): Promise<GcReport> {
  const response = await request(registry.url, `/admin/v1/gc${options.dryRun ? '?dryRun=true' : ''}`, { method: 'POST' });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`POST /admin/v1/gc: ${response.status} ${text}`);
  return JSON.parse(text) as GcReport;
}

/** `berth gc` in its own process against the registry's data directory and environment. */
export async function collectWithCli(
  registry: RegistryProcess,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number; report?: GcReport; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, 'gc', '--data-dir', registry.dataDir, ...args], {
      env: { ...process.env, ...env },
    });
    return { code: 0, report: JSON.parse(stdout) as GcReport, stderr };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    return { code: failed.code ?? -1, stderr: failed.stderr ?? '' };
  }
}

const ACCEPT_ALL = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].join(', ');

interface PulledDocument {
  mediaType?: string;
  config?: { digest: string };
  layers?: Array<{ digest: string }>;
  manifests?: Array<{ digest: string }>;
}

/**
 * Pulls `reference` the way a client does: the manifest, then (recursively for an index) every blob, each
 * verified against its digest. Returns what failed, empty when the pull is complete.
 */
export async function pullProblems(baseUrl: string, repository: string, reference: string): Promise<string[]> {
  const response = await request(baseUrl, `/v2/${repository}/manifests/${reference}`, { headers: { Accept: ACCEPT_ALL } });
  if (response.status !== 200) return [`${repository}:${reference}: manifest GET answered ${response.status} ${await response.text()}`];
  const bytes = await readBytes(response);
  const digest = response.headers.get('docker-content-digest');
  if (digestOf(bytes) !== digest) return [`${repository}:${reference}: manifest bytes do not match ${digest}`];
  const document = JSON.parse(bytes.toString('utf8')) as PulledDocument;
  const problems: string[] = [];
  for (const child of document.manifests ?? []) problems.push(...(await pullProblems(baseUrl, repository, child.digest)));
  for (const blob of [...(document.config ? [document.config] : []), ...(document.layers ?? [])]) {
    const blobResponse = await request(baseUrl, `/v2/${repository}/blobs/${blob.digest}`);
    if (blobResponse.status !== 200) {
      problems.push(`${repository}:${reference}: blob ${blob.digest} answered ${blobResponse.status}`);
      await blobResponse.arrayBuffer();
    } else if (digestOf(await readBytes(blobResponse)) !== blob.digest) {
      problems.push(`${repository}:${reference}: blob ${blob.digest} bytes do not verify`);
    }
  }
  return problems;
}

/** Every tag of a repository (empty when it is unknown). */
export async function tagsOf(baseUrl: string, repository: string): Promise<string[]> {
  const response = await request(baseUrl, `/v2/${repository}/tags/list`);
  if (response.status !== 200) {
    await response.arrayBuffer();
    return [];
  }
  return ((await response.json()) as { tags: string[] | null }).tags ?? [];
}
