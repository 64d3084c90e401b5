/**
 * Compose's variable interpolation, applied to every string value (never to keys) of a parsed file:
 * `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:?message}` and
 * `${VAR?message}` (required), `${VAR:+replacement}` and `${VAR+replacement}`, and `$$` for a literal `$`.
 * Defaults may themselves hold variables.
 */
export class InterpolationError extends Error {
  override name = 'InterpolationError';
}

export type Variables = Readonly<Record<string, string | undefined>>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

export function interpolateValue(text: string, variables: Variables, path: string): string {
  let result = '';
  let index = 0;
  while (index < text.length) {
    const dollar = text.indexOf('$', index);
    if (dollar === -1) return result + text.slice(index);
    result += text.slice(index, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      result += '$';
      index = dollar + 2;
    } else if (next === '{') {
      const end = closingBrace(text, dollar + 2);
      if (end === -1) throw new InterpolationError(`${path}: unterminated \${ in ${JSON.stringify(text)}`);
      result += substitute(text.slice(dollar + 2, end), variables, path);
      index = end + 1;
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      if (name === undefined)
        throw new InterpolationError(`${path}: invalid interpolation format for ${JSON.stringify(text)}; use $$ for a literal $`);
      result += variables[name] ?? '';
      index = dollar + 1 + name.length;
    }
  }
  return result;
}

/** Every string in a parsed YAML tree, interpolated; the tree is copied, not changed. */
export function interpolateTree(value: unknown, variables: Variables, path = ''): unknown {
  if (typeof value === 'string') return interpolateValue(value, variables, path || '(root)');
  if (Array.isArray(value)) return value.map((entry, index) => interpolateTree(entry, variables, `${path}[${index}]`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, entry]) => [key, interpolateTree(entry, variables, path ? `${path}.${key}` : key)]),
    );
  }
  return value;
}

function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let index = from; index < text.length; index++) {
    if (text[index] === '{') depth++;
    else if (text[index] === '}' && --depth === 0) return index;
  }
  return -1;
}

function substitute(expression: string, variables: Variables, path: string): string {
  const name = NAME.exec(expression)?.[0];
  if (name === undefined) throw new InterpolationError(`${path}: invalid interpolation format \${${expression}}`);
  const rest = expression.slice(name.length);
  const value = variables[name];
  if (rest === '') return value ?? '';
  const operator = /^(:?[-?+])/.exec(rest)?.[1];
  if (operator === undefined) throw new InterpolationError(`${path}: invalid interpolation format \${${expression}}`);
  const argument = () => interpolateValue(rest.slice(operator.length), variables, path);
  const absent = operator.startsWith(':') ? value === undefined || value === '' : value === undefined;
  switch (operator.replace(':', '')) {
    case '-':
      return absent ? argument() : value!;
    case '?':
      if (absent) throw new InterpolationError(`${path}: required variable ${name} is missing a value: ${argument()}`);
      return value!;
    default:
      return absent ? '' : argument();
  }
}
