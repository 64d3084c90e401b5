import { isRegexSource, type BuildRule, type GitRef } from './build-types.js';

/** A rule that matched a ref, with the regex groups its tag template may name. */
export interface MatchedRule {
  index: number;
  rule: BuildRule;
  groups: string[];
}

/** The rules that build this ref, as Docker Hub picks them: type first, then the exact name or the whole-name regex. */
export function matchRules(rules: readonly BuildRule[], ref: GitRef): MatchedRule[] {
  const matched: MatchedRule[] = [];
  rules.forEach((rule, index) => {
    if (rule.sourceType !== ref.type) return;
    if (!isRegexSource(rule.source)) {
      if (rule.source === ref.name) matched.push({ index, rule, groups: [] });
      return;
    }
    const match = new RegExp(`^(?:${rule.source.slice(1, -1)})$`).exec(ref.name);
    if (match) matched.push({ index, rule, groups: match.slice(1).map((group) => group ?? '') });
  });
  return matched;
}

/**
 * The tag templates of a matched rule with the ref's parts filled in; {sha} and {short_sha} stay until the
 * commit is known (a manual build learns it only when the worker fetches).
 */
export function refTemplates(matched: MatchedRule, ref: GitRef): string[] {
  return matched.rule.tag
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '')
    .map((tag) =>
      tag.replaceAll('{sourceref}', ref.name).replace(/\{\\([1-9])\}/g, (_whole, digit: string) => matched.groups[Number(digit) - 1] ?? ''),
    );
}

/** The final tags: the commit filled in, each made a valid tag (a `/` in a branch name becomes `-`, as Docker Hub does). */
export function finalTags(templates: readonly string[], commit: string): string[] {
  const tags = templates.map((template) => sanitizeTag(template.replaceAll('{short_sha}', commit.slice(0, 7)).replaceAll('{sha}', commit)));
  return [...new Set(tags.filter((tag) => tag !== ''))];
}

/** The cache tags of a build of `ref` (see JobCache): one per branch or tag, `branch-main`, `tag-v1.2`. */
export function cacheTags(ref: GitRef, defaultBranch: string): { from: string[]; to: string } {
  const own = sanitizeTag(`${ref.type}-${ref.name}`);
  const fallback = sanitizeTag(`branch-${defaultBranch}`);
  return { from: own === fallback ? [own] : [own, fallback], to: own };
}

function sanitizeTag(tag: string): string {
  return tag
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 128);
}

export function defaultRule(defaultBranch: string): BuildRule {
  return {
    sourceType: 'branch',
    source: defaultBranch,
    tag: 'latest',
    dockerfile: 'Dockerfile',
    context: '.',
    buildArgs: {},
    target: null,
    cache: true,
  };
}
