import { parseGoDuration } from '../../platform/go-duration.js';
import { DockerfileError, checkFlags, flagValue, jsonForm, type Instruction } from './dockerfile.js';
import { expand, expandList } from './build-plan.js';
import { splitRawWords, type Variables } from './shell-words.js';

/**
 * The image config a build writes (the OCI image config, with docker's extra runtime fields: Healthcheck,
 * Shell, OnBuild) and what each metadata instruction does to it, with docker's semantics.
 */

export interface Healthcheck {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface RuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: Healthcheck;
  Shell?: string[];
  OnBuild?: string[] | null;
  ArgsEscaped?: boolean;
}

export interface HistoryEntry {
  created: string;
  created_by: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ConfigDocument {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config: RuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: HistoryEntry[];
}

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** What a metadata instruction needs: the variables for expansion, and whether this stage set CMD yet. */
export interface ConfigContext {
  variables: Variables;
  escapeCharacter: string;
  cmdSet: boolean;
}

/** Applies ENV, LABEL, EXPOSE, VOLUME, USER, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER, CMD, ENTRYPOINT. */
export function applyMetadata(document: ConfigDocument, instruction: Instruction, context: ConfigContext): { cmdSet: boolean } {
  const config = document.config;
  const { line } = instruction;
  const words = () => expandList(instruction.args, context.variables, context.escapeCharacter, line);
  if (instruction.keyword !== 'HEALTHCHECK') checkFlags(instruction, []);
  switch (instruction.keyword) {
    case 'ENV':
      for (const [key, value] of keyValues(instruction, context, 'ENV')) config.Env = setEnv(config.Env ?? [], key, value);
      break;
    case 'LABEL':
      for (const [key, value] of keyValues(instruction, context, 'LABEL')) config.Labels = { ...config.Labels, [key]: value };
      break;
    case 'EXPOSE':
      for (const port of words()) config.ExposedPorts = { ...config.ExposedPorts, ...exposedPorts(port, line) };
      break;
    case 'VOLUME':
      for (const volume of instruction.json ?? words()) {
        if (volume.trim() === '') throw new DockerfileError(line, 'VOLUME specified can not be an empty string');
        config.Volumes = { ...config.Volumes, [volume]: {} };
      }
      break;
    case 'USER':
      config.User = expand(instruction.args, context.variables, context.escapeCharacter, line);
      break;
    case 'SHELL':
      if (!instruction.json || instruction.json.length === 0)
        throw new DockerfileError(line, 'SHELL requires the arguments to be in JSON form');
      config.Shell = instruction.json;
      break;
    case 'STOPSIGNAL':
      config.StopSignal = expand(instruction.args, context.variables, context.escapeCharacter, line);
      break;
    case 'HEALTHCHECK':
      config.Healthcheck = healthcheck(instruction);
      break;
    case 'ONBUILD':
      config.OnBuild = [...(config.OnBuild ?? []), onbuildTrigger(instruction)];
      break;
    case 'MAINTAINER':
      document.author = instruction.args;
      break;
    case 'CMD':
      config.Cmd = commandOf(instruction, config.Shell);
      return { cmdSet: true };
    case 'ENTRYPOINT':
      config.Entrypoint = commandOf(instruction, config.Shell);
      // An ENTRYPOINT drops a CMD inherited from the base image, not one this stage set.
      if (!context.cmdSet) config.Cmd = null;
      break;
    default:
      throw new DockerfileError(line, `${instruction.keyword} is not a metadata instruction`);
  }
  return { cmdSet: context.cmdSet };
}

/** The history line docker writes for a metadata instruction. */
export function metadataHistory(instruction: Instruction, document: ConfigDocument): string {
  const config = document.config;
  switch (instruction.keyword) {
    case 'CMD':
      return `CMD ${JSON.stringify(config.Cmd ?? [])}`;
    case 'ENTRYPOINT':
      return `ENTRYPOINT ${JSON.stringify(config.Entrypoint ?? [])}`;
    case 'SHELL':
      return `SHELL ${JSON.stringify(config.Shell ?? [])}`;
    case 'HEALTHCHECK':
      return `HEALTHCHECK &{${JSON.stringify(config.Healthcheck?.Test ?? [])}}`;
    default:
      return `${instruction.keyword} ${instruction.args}`;
  }
}

/** The shell form runs through the image's SHELL (`/bin/sh -c` by default); the JSON form as it is. */
export function commandOf(instruction: Instruction, shell: string[] | undefined): string[] {
  return instruction.json ?? [...(shell ?? DEFAULT_SHELL), instruction.args];
}

export function setEnv(env: readonly string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const index = env.findIndex((item) => item.split('=')[0] === key);
  return index === -1 ? [...env, entry] : env.map((item, position) => (position === index ? entry : item));
}

/** `KEY=value ...`, or the legacy `KEY value with spaces` (one pair, the rest is the value). */
function keyValues(instruction: Instruction, context: ConfigContext, what: string): Array<[string, string]> {
  const rawWords = splitRawWords(instruction.args, context.escapeCharacter);
  const rawFirst = rawWords[0] ?? '';
  if (!rawFirst.includes('=')) {
    if (rawWords.length < 2) throw new DockerfileError(instruction.line, `${what} must have two arguments`);
    const value = instruction.args.trimStart().slice(rawFirst.length).trim();
    return [[expandOne(rawFirst), expandOne(value)]];
  }
  return rawWords.map((word) => {
    if (word.indexOf('=') <= 0) throw new DockerfileError(instruction.line, `${what} names can not be blank (in "${word}")`);
    // Expanded as one word after the split: `A=${B}` keeps B's spaces in A.
    const pair = expandOne(word);
    const equals = pair.indexOf('=');
    return [pair.slice(0, equals), pair.slice(equals + 1)];
  });

  function expandOne(text: string): string {
    return expand(text, context.variables, context.escapeCharacter, instruction.line);
  }
}

function exposedPorts(spec: string, line: number): Record<string, object> {
  const match = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!match) throw new DockerfileError(line, `invalid port ${spec} for EXPOSE`);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (last < first || last > 65535) throw new DockerfileError(line, `invalid port range ${spec} for EXPOSE`);
  const protocol = (match[3] ?? 'tcp').toLowerCase();
  const ports: Record<string, object> = {};
  for (let port = first; port <= last; port++) ports[`${port}/${protocol}`] = {};
  return ports;
}

function onbuildTrigger(instruction: Instruction): string {
  const keyword = instruction.args.split(/\s+/)[0]?.toUpperCase() ?? '';
  if (keyword === 'ONBUILD') throw new DockerfileError(instruction.line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (keyword === 'FROM' || keyword === 'MAINTAINER')
    throw new DockerfileError(instruction.line, `${keyword} isn't allowed as an ONBUILD trigger`);
  if (keyword === '') throw new DockerfileError(instruction.line, 'ONBUILD requires at least one argument');
  return instruction.args;
}

const HEALTHCHECK_FLAGS = ['interval', 'timeout', 'start-period', 'start-interval', 'retries'];

function healthcheck(instruction: Instruction): Healthcheck {
  checkFlags(instruction, HEALTHCHECK_FLAGS);
  const [kind = '', ...rest] = instruction.args.split(/\s+/);
  if (kind.toUpperCase() === 'NONE') {
    if (rest.length > 0 || instruction.flags.length > 0) throw new DockerfileError(instruction.line, 'HEALTHCHECK NONE takes no arguments');
    return { Test: ['NONE'] };
  }
  if (kind.toUpperCase() !== 'CMD') throw new DockerfileError(instruction.line, `unknown type ${kind} in HEALTHCHECK (try CMD)`);
  const command = instruction.args.slice(kind.length).trim();
  if (command === '') throw new DockerfileError(instruction.line, 'HEALTHCHECK CMD requires a command');
  const json = command.startsWith('[') ? jsonForm(command) : undefined;
  const check: Healthcheck = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', command] };
  const durations: Array<[string, keyof Healthcheck]> = [
    ['interval', 'Interval'],
    ['timeout', 'Timeout'],
    ['start-period', 'StartPeriod'],
    ['start-interval', 'StartInterval'],
  ];
  for (const [flag, field] of durations) {
    const value = flagValue(instruction, flag);
    if (value !== undefined) (check as unknown as Record<string, number>)[field] = parseDuration(value, flag, instruction.line);
  }
  const retries = flagValue(instruction, 'retries');
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries) || Number(retries) < 1) throw new DockerfileError(instruction.line, '--retries must be at least 1');
    check.Retries = Number(retries);
  }
  return check;
}

/** A Go duration (`1m30s`, `500ms`) in nanoseconds; docker refuses a duration under 1ms (0 means the default). */
function parseDuration(text: string, flag: string, line: number): number {
  const parsed = parseGoDuration(text);
  if ('error' in parsed || parsed.nanoseconds < 0) throw new DockerfileError(line, `invalid duration ${text} for --${flag}`);
  if (parsed.nanoseconds !== 0 && parsed.nanoseconds < 1e6) throw new DockerfileError(line, `--${flag} cannot be less than 1ms`);
  return parsed.nanoseconds;
}
