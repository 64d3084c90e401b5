import { table } from './table.js';

/**
 * docker's `--format`: the part of Go's text/template that scripts use against `ps`, `images`, `inspect` and
 * the other listings. `{{.Field.Sub}}`, `{{.}}`, functions `json`, `join`, `upper`, `lower`, `title`,
 * `truncate`, `println`, `\t`/`\n` escapes, and the `table` prefix that adds a header row (docker's header for
 * each field) and aligns the columns. No npm package implements Go templates; this subset is all docker's
 * own documentation uses. Values print as Go prints them: `[a b]` for a list, `map[k:v]` for an object.
 */

export class FormatError extends Error {}

/** A compiled `--format`: renders one line per item, or a table with a header. */
export interface OutputFormat {
  readonly isTable: boolean;
  render(items: readonly unknown[]): string;
}

type Argument = { kind: 'field'; path: string[] } | { kind: 'string'; value: string } | { kind: 'number'; value: number };
type Segment = { kind: 'text'; text: string } | { kind: 'action'; source: string; fn: string | undefined; args: Argument[] };

const FUNCTIONS: Record<string, (args: unknown[]) => string> = {
  json: ([value]) => JSON.stringify(value ?? null),
  join: ([list, separator]) => (Array.isArray(list) ? list.map(goString).join(String(separator ?? '')) : goString(list)),
  upper: ([value]) => goString(value).toUpperCase(),
  lower: ([value]) => goString(value).toLowerCase(),
  title: ([value]) => goString(value).replace(/\b\w/g, (letter) => letter.toUpperCase()),
  truncate: ([value, length]) => goString(value).slice(0, Number(length)),
  println: (args) => `${args.map(goString).join(' ')}\n`,
};

/**
 * Compiles `format`; `headers` names the table columns per field (e.g. `ID` -> `CONTAINER ID`); any other
 * field's header is its name in capitals. Throws FormatError on a malformed template or an unknown function.
 */
export function compileFormat(format: string, headers: Readonly<Record<string, string>> = {}): OutputFormat {
  const isTable = /^table(\s|$)/.test(format);
  const body = (isTable ? format.replace(/^table\s*/, '') : format).replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const segments = parseTemplate(body);
  return {
    isTable,
    render(items) {
      if (!isTable) return items.map((item) => execute(segments, item)).join('\n');
      const headerRow = execute(
        segments.map((segment) => (segment.kind === 'text' ? segment : { kind: 'text', text: headerOf(segment, headers) })),
        undefined,
      );
      return table(
        splitColumns(headerRow),
        items.map((item) => splitColumns(execute(segments, item))),
      );
    },
  };
}

/** Renders a single value (docker's `inspect --format` on one object). */
export function renderOne(format: string, item: unknown): string {
  return compileFormat(format).render([item]);
}

function splitColumns(line: string): string[] {
  return line.split('\t');
}

function headerOf(segment: Extract<Segment, { kind: 'action' }>, headers: Readonly<Record<string, string>>): string {
  const field = segment.args.find((argument) => argument.kind === 'field');
  const name = field?.kind === 'field' ? (field.path.at(-1) ?? '') : '';
  return headers[name] ?? name.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

function parseTemplate(text: string): Segment[] {
  const segments: Segment[] = [];
  let rest = text;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open < 0) break;
    const close = rest.indexOf('}}', open);
    if (close < 0) throw new FormatError(`template: unclosed action in ${JSON.stringify(text)}`);
    if (open > 0) segments.push({ kind: 'text', text: rest.slice(0, open) });
    segments.push(parseAction(rest.slice(open + 2, close).trim()));
    rest = rest.slice(close + 2);
  }
  if (rest !== '') segments.push({ kind: 'text', text: rest });
  return segments;
}

function parseAction(source: string): Segment {
  const words = [...source.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((match) =>
    match[1] !== undefined ? { quoted: true, text: JSON.parse(`"${match[1]}"`) as string } : { quoted: false, text: match[2] ?? '' },
  );
  const first = words[0];
  if (!first) throw new FormatError('template: empty action {{}}');
  const isFunction = !first.quoted && !first.text.startsWith('.');
  if (isFunction && !(first.text in FUNCTIONS))
    throw new FormatError(`template: function "${first.text}" not defined (known: ${Object.keys(FUNCTIONS).join(', ')})`);
  const args = (isFunction ? words.slice(1) : words).map((word): Argument => {
    if (word.quoted) return { kind: 'string', value: word.text };
    if (word.text.startsWith('.')) return { kind: 'field', path: word.text.split('.').filter(Boolean) };
    if (/^-?\d+$/.test(word.text)) return { kind: 'number', value: Number(word.text) };
    throw new FormatError(`template: unexpected ${JSON.stringify(word.text)} in {{${source}}}`);
  });
  return { kind: 'action', source, fn: isFunction ? first.text : undefined, args };
}

function execute(segments: readonly Segment[], item: unknown): string {
  return segments
    .map((segment) => {
      if (segment.kind === 'text') return segment.text;
      const values = segment.args.map((argument) =>
        argument.kind === 'field' ? lookup(item, argument.path, segment.source) : argument.value,
      );
      return segment.fn ? (FUNCTIONS[segment.fn] as (args: unknown[]) => string)(values) : values.map(goString).join(' ');
    })
    .join('');
}

/** `.A.B` in `item`: an unknown field is an error naming it, as Go's "can't evaluate field". */
function lookup(item: unknown, path: readonly string[], source: string): unknown {
  let value = item;
  for (const [index, name] of path.entries()) {
    if (value === null || value === undefined)
      throw new FormatError(`template: {{${source}}}: nil pointer evaluating .${path.slice(0, index + 1).join('.')}`);
    if (typeof value !== 'object' || !(name in value))
      throw new FormatError(`template: {{${source}}}: can't evaluate field ${name}${fieldsHint(value)}`);
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}

function fieldsHint(value: unknown): string {
  return typeof value === 'object' && value !== null ? ` (fields: ${Object.keys(value).join(', ')})` : '';
}

/** How Go's fmt prints a value decoded from JSON. */
export function goString(value: unknown): string {
  if (value === null || value === undefined) return '<nil>';
  if (Array.isArray(value)) return `[${value.map(goString).join(' ')}]`;
  if (typeof value === 'object')
    return `map[${Object.entries(value)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, entry]) => `${key}:${goString(entry)}`)
      .join(' ')}]`;
  return String(value);
}
