import { createHmac, randomUUID } from 'node:crypto';

/** A webhook as a forge sends it: headers (with its signature) and the exact body bytes. */
export interface ForgeRequest {
  headers: Record<string, string>;
  body: string;
}

export interface PushFields {
  /** `refs/heads/main`, `refs/tags/v1.2`. */
  ref: string;
  /** The pushed commit; null for a deletion. */
  commit: string | null;
  /** What the ref points at now: the commit, an annotated tag's object, or zeros for a deletion. */
  after?: string;
  message?: string;
}

const ZERO = '0'.repeat(40);

/** GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`. */
export function githubHook(secret: string, event: string, payload: object, delivery: string = randomUUID()): ForgeRequest {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'X-GitHub-Event': event,
      'X-GitHub-Delivery': delivery,
      'X-Hub-Signature-256': `sha256=${hmac(secret, body)}`,
    },
  };
}

/** Gitea (and Forgejo): a bare hex HMAC, and X-GitHub-Event beside its own event header, as Gitea sends. */
export function giteaHook(secret: string, event: string, payload: object, delivery: string = randomUUID()): ForgeRequest {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      'X-Gitea-Event': event,
      'X-GitHub-Event': event,
      'X-Gitea-Delivery': delivery,
      'X-Gitea-Signature': hmac(secret, body),
    },
  };
}

/** GitLab: the secret token itself in X-Gitlab-Token. */
export function gitlabHook(secret: string, event: string, payload: object, delivery: string = randomUUID()): ForgeRequest {
  return {
    body: JSON.stringify(payload),
    headers: { 'Content-Type': 'application/json', 'X-Gitlab-Event': event, 'X-Gitlab-Event-UUID': delivery, 'X-Gitlab-Token': secret },
  };
}

/** A GitHub or Gitea push payload (the fields Berth reads, and a few it does not). */
export function githubPushPayload(fields: PushFields): object {
  const after = fields.after ?? fields.commit ?? ZERO;
  return {
    ref: fields.ref,
    before: ZERO,
    after,
    created: false,
    deleted: fields.commit === null,
    repository: { full_name: 'team/app' },
    head_commit: fields.commit === null ? null : { id: fields.commit, message: fields.message ?? 'a commit' },
  };
}

/** A GitLab push or tag push payload. */
export function gitlabPushPayload(fields: PushFields): object {
  return {
    object_kind: fields.ref.startsWith('refs/tags/') ? 'tag_push' : 'push',
    ref: fields.ref,
    before: ZERO,
    after: fields.after ?? fields.commit ?? ZERO,
    checkout_sha: fields.commit,
    commits: fields.commit === null ? [] : [{ id: fields.commit, message: fields.message ?? 'a commit' }],
    project: { path_with_namespace: 'team/app' },
  };
}

/** Posts the hook to the project's endpoint; the status and JSON body. */
export async function postHook(
  registryUrl: string,
  project: string,
  hook: ForgeRequest,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${registryUrl}/builds/v1/hooks/${project}`, { method: 'POST', headers: hook.headers, body: hook.body });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function hmac(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}
