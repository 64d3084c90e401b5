import { z } from 'zod';

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
export const PROJECT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A rule's source: a name, or `/regex/` whose groups the tag template reads as {\1}..{\9}. */
const sourceSchema = z.string().min(1).refine(validSource, 'a /regex/ must be a valid regular expression');

/** One build rule in Docker Hub's shape. */
export const ruleSchema = z.strictObject({
  sourceType: z.enum(['branch', 'tag']).default('branch'),
  source: sourceSchema,
  /** Comma-separated tags: latest, {sourceref}, {\1}..{\9}, {sha}, {short_sha}. */
  tag: z.string().min(1).default('latest'),
  dockerfile: z.string().min(1).default('Dockerfile'),
  context: z.string().min(1).default('.'),
  buildArgs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
  target: z.string().min(1).nullable().default(null),
  cache: z.boolean().default(true),
});
export type BuildRule = z.output<typeof ruleSchema>;

export const credentialsSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  /** An HTTPS token (GitHub/Gitea personal or deploy token, GitLab project token): sent as basic auth. */
  z.strictObject({ type: z.literal('token'), username: z.string().min(1).default('x-access-token'), token: z.string().min(1) }),
  /**
   * An SSH deploy key; `knownHosts` (known_hosts lines, as `ssh-keyscan` prints them) pins the server's host key.
   * Without it the first key the server shows is accepted for that job.
   */
  z.strictObject({ type: z.literal('ssh'), privateKey: z.string().min(1), knownHosts: z.string().min(1).nullable().default(null) }),
]);
export type GitCredentials = z.output<typeof credentialsSchema>;

export const projectInputSchema = z.strictObject({
  repository: z.string().regex(REPOSITORY, 'a repository name of this registry, e.g. team/app'),
  git: z.strictObject({
    url: z.string().min(1),
    defaultBranch: z.string().min(1).default('main'),
    credentials: credentialsSchema.default({ type: 'none' }),
  }),
  /** Unset: one is generated and returned once. */
  webhookSecret: z.string().min(16, 'at least 16 characters').optional(),
  /** Unset: the default rule, the default branch builds `latest`. */
  rules: z.array(ruleSchema).min(1).optional(),
  /** Builds of this project running at once. */
  concurrency: z.number().int().min(1).max(64).default(1),
  /** A newer push to a rule and ref cancels its running build (a queued one is always superseded). */
  cancelRunning: z.boolean().default(true),
  /** The repository the builder's cache is exported to and imported from. */
  cacheRepository: z.string().regex(REPOSITORY).nullable().default(null),
});

export interface BuildProject {
  name: string;
  repository: string;
  git: { url: string; defaultBranch: string; credentials: GitCredentials };
  webhookSecret: string;
  rules: BuildRule[];
  concurrency: number;
  cancelRunning: boolean;
  cacheRepository: string | null;
  createdAt: string;
}

export type RefType = 'branch' | 'tag';

export interface GitRef {
  type: RefType;
  name: string;
}

export type BuildState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'superseded';
export const FINISHED_STATES: readonly BuildState[] = ['succeeded', 'failed', 'cancelled', 'superseded'];

export type BuildTrigger = 'github' | 'gitea' | 'gitlab' | 'manual' | 'retry';

/** What a build is asked to do, fixed when it is queued. */
export interface BuildJob {
  id: string;
  project: string;
  repository: string;
  ruleIndex: number;
  rule: BuildRule;
  ref: GitRef;
  /** The commit to build; '' for a manual build of a ref, resolved by the worker when it fetches. */
  commit: string;
  message: string;
  trigger: BuildTrigger;
  /** The tags the rule gives, without {sha}/{short_sha} when the commit is not known yet. */
  tagTemplates: string[];
  createdAt: number;
  retryOf: string | null;
}

/** A build as the admin API shows it. */
export interface BuildRecord extends BuildJob {
  state: BuildState;
  attempt: number;
  worker: string;
  claimedAt: number | null;
  finishedAt: number | null;
  digest: string;
  tags: string[];
  error: string;
  steps: Array<{ name: string; seconds: number; cached: boolean }>;
  cancelRequested: boolean;
}

export function publicProject(project: BuildProject, secrets: string[]) {
  const { webhookSecret: _secret, git, ...rest } = project;
  return { ...rest, git: { url: git.url, defaultBranch: git.defaultBranch, credentials: git.credentials.type }, secrets };
}

function validSource(source: string): boolean {
  if (!isRegexSource(source)) return true;
  try {
    new RegExp(source.slice(1, -1));
    return true;
  } catch {
    return false;
  }
}

export function isRegexSource(source: string): boolean {
  return source.length > 2 && source.startsWith('/') && source.endsWith('/');
}
