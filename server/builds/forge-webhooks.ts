import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { CodedError } from '../../platform/errors.js';
import { BuildErrors } from './build-errors.js';
import type { GitRef } from './build-types.js';

export type Forge = 'github' | 'gitea' | 'gitlab';

/** What a verified webhook asks for. */
export type ForgeEvent =
  { kind: 'ping' } | { kind: 'ignored'; reason: string } | { kind: 'push'; ref: GitRef; commit: string; message: string };

export interface ForgeDelivery {
  forge: Forge;
  /** The forge's delivery id ('' if it sends none): a redelivery carries the same one. */
  deliveryId: string;
  event: string;
}

type Headers = (name: string) => string;

const ZERO_SHA = /^0+$/;

/** Which forge sent the request, by its event header. Gitea and Forgejo also send X-GitHub-Event: they are looked for first. */
export function identifyForge(header: Headers): ForgeDelivery {
  const gitea = header('x-forgejo-event') || header('x-gitea-event');
  if (gitea) return { forge: 'gitea', event: gitea, deliveryId: header('x-forgejo-delivery') || header('x-gitea-delivery') };
  const github = header('x-github-event');
  if (github) return { forge: 'github', event: github, deliveryId: header('x-github-delivery') };
  const gitlab = header('x-gitlab-event');
  if (gitlab) return { forge: 'gitlab', event: gitlab, deliveryId: header('x-gitlab-event-uuid') || header('idempotency-key') };
  throw new CodedError(BuildErrors.FORGE_UNKNOWN);
}

/**
 * Checks the request came from the forge holding the project's secret, in constant time and before a byte
 * of the body is parsed: GitHub's `sha256=<hex>` HMAC, Gitea/Forgejo's bare hex HMAC, GitLab's token.
 */
export function verifySignature(forge: Forge, header: Headers, body: Buffer, secret: string): void {
  if (forge === 'gitlab') {
    const token = header('x-gitlab-token');
    if (!token) throw new CodedError(BuildErrors.SIGNATURE_MISSING, 'X-Gitlab-Token is missing');
    // Hashed first so that the comparison's length, and so its time, says nothing about the secret's.
    if (!constantTimeEqual(sha256(token), sha256(secret))) throw new CodedError(BuildErrors.SIGNATURE_INVALID);
    return;
  }
  const signature =
    forge === 'github' ? stripPrefix(header('x-hub-signature-256')) : header('x-forgejo-signature') || header('x-gitea-signature');
  if (!signature)
    throw new CodedError(
      BuildErrors.SIGNATURE_MISSING,
      forge === 'github' ? 'X-Hub-Signature-256 is missing' : 'X-Gitea-Signature is missing',
    );
  const expected = createHmac('sha256', secret).update(body).digest();
  const given = /^[0-9a-f]{64}$/i.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0);
  if (!constantTimeEqual(given, expected)) throw new CodedError(BuildErrors.SIGNATURE_INVALID);
}

/** The event of a verified body: a ping, a push of a branch or tag (deletions ignored), or something not built. */
export function parseForgeEvent(delivery: ForgeDelivery, body: Buffer): ForgeEvent {
  const { forge, event } = delivery;
  if (forge === 'github' && event === 'ping') return { kind: 'ping' };
  const isPush = forge === 'gitlab' ? event === 'Push Hook' || event === 'Tag Push Hook' : event === 'push';
  if (!isPush) return { kind: 'ignored', reason: `${event} events start no build` };
  const payload = parseJson(body);
  const ref = parseRef(payload.ref);
  if (!ref) return { kind: 'ignored', reason: `${String(payload.ref)} is neither a branch nor a tag` };
  const commit = forge === 'gitlab' ? payload.checkout_sha : (payload.head_commit as { id?: unknown } | null | undefined)?.id;
  const deleted = payload.deleted === true || (typeof payload.after === 'string' && ZERO_SHA.test(payload.after));
  if (deleted || commit === null || commit === undefined) return { kind: 'ignored', reason: `${ref.type} ${ref.name} was deleted` };
  if (typeof commit !== 'string' || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit))
    throw new CodedError(BuildErrors.PAYLOAD_INVALID, 'the pushed commit is not a commit id');
  return { kind: 'push', ref, commit, message: commitMessage(forge, payload, commit) };
}

function commitMessage(forge: Forge, payload: Record<string, unknown>, commit: string): string {
  if (forge !== 'gitlab') return String((payload.head_commit as { message?: unknown }).message ?? '');
  const commits = Array.isArray(payload.commits) ? (payload.commits as Array<{ id?: unknown; message?: unknown }>) : [];
  return String(commits.find((entry) => entry.id === commit)?.message ?? payload.message ?? '');
}

function parseRef(ref: unknown): GitRef | undefined {
  if (typeof ref !== 'string') return undefined;
  if (ref.startsWith('refs/heads/')) return { type: 'branch', name: ref.slice('refs/heads/'.length) };
  if (ref.startsWith('refs/tags/')) return { type: 'tag', name: ref.slice('refs/tags/'.length) };
  return undefined;
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw new CodedError(BuildErrors.PAYLOAD_INVALID, 'the payload is not a JSON object');
}

function stripPrefix(signature: string): string {
  return signature.startsWith('sha256=') ? signature.slice('sha256='.length) : '';
}

// timingSafeEqual needs equal lengths; comparing against itself keeps the time independent of where they differ.
function constantTimeEqual(given: Buffer, expected: Buffer): boolean {
  if (given.length !== expected.length) {
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(given, expected);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
