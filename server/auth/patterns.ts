/**
 * Repository name patterns of permission rules: `*` matches within one path component, `**` across
 * components (`team-a/**` is everything under team-a/, `*\/public-*` every top-level team's public-* repos).
 */
export function compilePattern(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index]!;
    if (char === '*' && pattern[index + 1] === '*') {
      source += '.*';
      index++;
    } else if (char === '*') {
      source += '[^/]*';
    } else {
      source += char.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

export function matchesPattern(pattern: string, repository: string): boolean {
  return compilePattern(pattern).test(repository);
}
