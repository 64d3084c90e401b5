/**
 * Parses a WWW-Authenticate header (RFC 7235) into its challenges, e.g.
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
 * One header may carry several challenges, and quoted values may contain commas and escaped quotes.
 */

export interface AuthChallenge {
  /** Lowercased: `bearer`, `basic`, ... */
  scheme: string;
  /** Parameter names lowercased. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

export function parseAuthChallenges(header: string | null): AuthChallenge[] {
  if (!header) return [];
  const challenges: AuthChallenge[] = [];
  let rest = header;
  let current: AuthChallenge | undefined;
  for (;;) {
    rest = rest.replace(/^[\s,]+/, '');
    if (rest === '') break;
    const token = TOKEN.exec(rest)?.[0];
    if (!token) break; // garbage: keep what was understood so far
    const afterToken = rest.slice(token.length).replace(/^\s*/, '');
    if (current && afterToken.startsWith('=') && !afterToken.startsWith('==')) {
      const { value, remainder } = readParamValue(afterToken.slice(1).replace(/^\s*/, ''));
      current.params[token.toLowerCase()] = value;
      rest = remainder;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
      rest = afterToken;
      // token68 form (e.g. `Negotiate abc==`): not a parameter list, nothing the agent uses
      const token68 = /^[A-Za-z0-9._~+/-]+=*(?=\s*(,|$))/.exec(rest);
      if (token68 && !rest.slice(token68[0].length).trimStart().startsWith('=')) rest = rest.slice(token68[0].length);
    }
  }
  return challenges;
}

function readParamValue(text: string): { value: string; remainder: string } {
  if (!text.startsWith('"')) {
    const end = text.search(/[\s,]|$/);
    return { value: text.slice(0, end), remainder: text.slice(end) };
  }
  let value = '';
  for (let i = 1; i < text.length; i++) {
    const char = text[i];
    if (char === '\\' && i + 1 < text.length) value += text[++i];
    else if (char === '"') return { value, remainder: text.slice(i + 1) };
    else value += char;
  }
  return { value, remainder: '' };
}
