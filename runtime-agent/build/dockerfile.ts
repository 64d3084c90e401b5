import { DockerfileParser, type Instruction as AstInstruction } from 'dockerfile-ast';

/**
 * A Dockerfile as the builder executes it: dockerfile-ast finds the instructions, their line ranges, the
 * parser directives and the escape character; the arguments are then joined from the raw lines with the
 * Dockerfile's rules (an escape character at the end of a line continues it; comment and blank lines inside
 * a continuation are dropped), flags are split off, heredoc bodies are collected and JSON forms recognised.
 */

export class DockerfileError extends Error {
  constructor(
    readonly line: number | undefined,
    detail: string,
    readonly file = 'Dockerfile',
  ) {
    super(line === undefined ? `${file}: ${detail}` : `${file}:${line}: ${detail}`);
  }
}

export interface Flag {
  name: string;
  /** Undefined for a bare `--link`. */
  value: string | undefined;
}

export interface Heredoc {
  name: string;
  content: string;
  /** False when the delimiter was quoted (`<<"EOF"`): no variable expansion in the body. */
  expand: boolean;
}

export interface Instruction {
  keyword: string;
  /** 1-based, the instruction's first line. */
  line: number;
  flags: Flag[];
  /** The arguments after the flags, continuations joined, before expansion. */
  args: string;
  /** The JSON (exec) form's strings, when the arguments are a JSON array of strings. */
  json: string[] | undefined;
  heredocs: Heredoc[];
}

export interface ParsedDockerfile {
  escapeCharacter: string;
  instructions: Instruction[];
}

export const KNOWN_INSTRUCTIONS = new Set([
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
]);

/** `# syntax=` may name the standard frontend only: any other frontend would be an image this builder cannot run. */
const STANDARD_SYNTAX = /^(docker\.io\/)?docker\/dockerfile(-upstream)?(:[\w.-]+)?(@sha256:[a-f0-9]{64})?$/;

const HEREDOC_MARKER = /<<(-?)(["']?)([A-Za-z_][\w.-]*)\2/g;

export function parseDockerfile(text: string, file = 'Dockerfile'): ParsedDockerfile {
  const document = DockerfileParser.parse(text);
  for (const directive of document.getDirectives()) {
    const name = directive.getName().toLowerCase();
    const value = directive.getValue() ?? '';
    const line = directive.getRange().start.line + 1;
    if (name === 'syntax' && !STANDARD_SYNTAX.test(value)) {
      throw new DockerfileError(line, `syntax ${value}: only the standard Dockerfile frontend (docker/dockerfile) is supported`, file);
    }
    if (name === 'escape' && value !== '\\' && value !== '`')
      throw new DockerfileError(line, `invalid escape token ${value}: use \\ or \``, file);
  }
  const escapeCharacter = document.getEscapeCharacter();
  const lines = text.split(/\r?\n/);
  const instructions = document.getInstructions().map((instruction) => toInstruction(instruction, lines, escapeCharacter, file));
  if (instructions.length === 0) throw new DockerfileError(undefined, 'the Dockerfile has no instructions', file);
  return { escapeCharacter, instructions };
}

/** Parses the text of one ONBUILD trigger as the instruction it names. */
export function parseTrigger(trigger: string, line: number, escapeCharacter: string): Instruction {
  const [instruction] = parseDockerfile(`# escape=${escapeCharacter}\n${trigger}\n`).instructions;
  if (!instruction) throw new DockerfileError(line, `empty ONBUILD trigger`);
  return { ...instruction, line };
}

function toInstruction(node: AstInstruction, lines: readonly string[], escapeCharacter: string, file: string): Instruction {
  const range = node.getRange();
  const line = range.start.line + 1;
  const keyword = node.getKeyword().toUpperCase();
  if (!KNOWN_INSTRUCTIONS.has(keyword)) throw new DockerfileError(line, `unknown instruction: ${node.getKeyword()}`, file);
  const physical = lines.slice(range.start.line, range.end.line + 1);
  const first = physical[0] ?? '';
  const afterKeyword = first.slice(first.search(/\S/) + node.getInstruction().length);
  const { text, consumed } = joinContinuations([afterKeyword, ...physical.slice(1)], escapeCharacter);
  const { flags, rest } = splitFlags(text.trim(), line, file);
  const heredocs = collectHeredocs(rest, physical.slice(consumed), keyword, line, file);
  if (rest === '' && keyword !== 'ONBUILD') throw new DockerfileError(line, `${keyword} requires at least one argument`, file);
  return { keyword, line, flags, args: rest, json: jsonForm(rest), heredocs };
}

/**
 * The logical line: an escape character ending a line continues it (with nothing in between); comment and
 * blank lines inside the continuation are dropped. Returns how many physical lines it took.
 */
function joinContinuations(physical: readonly string[], escapeCharacter: string): { text: string; consumed: number } {
  let text = '';
  for (let index = 0; index < physical.length; index++) {
    const line = physical[index] as string;
    if (index > 0 && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    const trimmed = line.trimEnd();
    if (!trimmed.endsWith(escapeCharacter)) return { text: text + line, consumed: index + 1 };
    text += trimmed.slice(0, -escapeCharacter.length);
  }
  return { text, consumed: physical.length };
}

function splitFlags(text: string, line: number, file: string): { flags: Flag[]; rest: string } {
  const flags: Flag[] = [];
  let rest = text;
  for (let match = /^--([a-zA-Z][\w-]*)(=(\S*))?(\s+|$)/.exec(rest); match; match = /^--([a-zA-Z][\w-]*)(=(\S*))?(\s+|$)/.exec(rest)) {
    flags.push({ name: match[1] as string, value: match[3] });
    rest = rest.slice(match[0].length);
  }
  if (/^--\S/.test(rest)) throw new DockerfileError(line, `malformed flag ${rest.split(/\s/)[0]}`, file);
  return { flags, rest };
}

function collectHeredocs(args: string, bodyLines: readonly string[], keyword: string, line: number, file: string): Heredoc[] {
  if (keyword !== 'RUN' && keyword !== 'COPY' && keyword !== 'ADD') return [];
  const heredocs: Heredoc[] = [];
  let cursor = 0;
  for (const match of args.matchAll(HEREDOC_MARKER)) {
    const [, dash, quote, name] = match as unknown as [string, string, string, string];
    const end = bodyLines.indexOf(name, cursor);
    const endTrimmed = end === -1 ? bodyLines.findIndex((text, index) => index >= cursor && text.replace(/^\t+/, '') === name) : end;
    if (endTrimmed === -1) throw new DockerfileError(line, `unterminated heredoc ${name}`, file);
    const body = bodyLines.slice(cursor, endTrimmed).map((text) => (dash ? text.replace(/^\t+/, '') : text));
    heredocs.push({ name, content: body.map((text) => `${text}\n`).join(''), expand: quote === '' });
    cursor = endTrimmed + 1;
  }
  return heredocs;
}

/** The JSON (exec) form's strings, or undefined when the text is not a JSON array of strings. */
export function jsonForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((item) => typeof item === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The flag's value, or undefined; a flag given twice or not allowed here is the Dockerfile's error. */
export function flagValue(instruction: Instruction, name: string): string | undefined {
  return instruction.flags.find((flag) => flag.name === name)?.value;
}

export function checkFlags(instruction: Instruction, allowed: readonly string[], repeatable: readonly string[] = []): void {
  const seen = new Set<string>();
  for (const flag of instruction.flags) {
    if (!allowed.includes(flag.name)) throw new DockerfileError(instruction.line, `unknown flag --${flag.name} for ${instruction.keyword}`);
    if (seen.has(flag.name) && !repeatable.includes(flag.name))
      throw new DockerfileError(instruction.line, `--${flag.name} given twice for ${instruction.keyword}`);
    seen.add(flag.name);
  }
}

/** The instruction as progress and history show it: keyword, flags and arguments on one line. */
export function instructionText(instruction: Instruction): string {
  const flags = instruction.flags.map((flag) => (flag.value === undefined ? `--${flag.name}` : `--${flag.name}=${flag.value}`));
  const args = instruction.heredocs.length > 0 ? instruction.args.split('\n')[0] : instruction.args;
  return [instruction.keyword, ...flags, args].join(' ');
}
