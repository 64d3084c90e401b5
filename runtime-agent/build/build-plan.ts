import type { Platform } from '../../oci/platform.js';
import { DockerfileError, flagValue, type Instruction, type ParsedDockerfile } from './dockerfile.js';
import { expandWord, expandWords, ExpansionError, type Variables } from './shell-words.js';

/**
 * The stage graph of a Dockerfile: ARGs before the first FROM (the global scope), the stages with their
 * names and the stages each one reads (FROM an earlier stage, COPY --from, RUN --mount from=), the target
 * and the stages it needs. Stages the target does not need are never run.
 */

export interface Stage {
  index: number;
  /** Lower-cased, as stage names are matched. */
  name: string | undefined;
  from: Instruction;
  instructions: Instruction[];
}

export interface BuildPlan {
  escapeCharacter: string;
  globalArgs: Map<string, string>;
  stages: Stage[];
  target: Stage;
  /** Indexes of the stages the target needs, itself included. */
  needed: Set<number>;
}

/** Proxy variables are predefined: usable in RUN without an ARG, never written to the history. */
export const PROXY_ARGS = new Set(
  ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((name) => [name, name.toLowerCase()]),
);

export function platformArgs(platform: Platform): Map<string, string> {
  const formatted = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
  const values: Array<[string, string]> = [];
  for (const prefix of ['BUILD', 'TARGET']) {
    values.push(
      [`${prefix}PLATFORM`, formatted],
      [`${prefix}OS`, platform.os],
      [`${prefix}ARCH`, platform.architecture],
      [`${prefix}VARIANT`, platform.variant ?? ''],
    );
  }
  return new Map(values);
}

export function planBuild(
  dockerfile: ParsedDockerfile,
  buildArgs: ReadonlyMap<string, string>,
  platform: Platform,
  targetName: string | undefined,
): BuildPlan {
  const globalArgs = new Map(platformArgs(platform));
  const stages: Stage[] = [];
  for (const instruction of dockerfile.instructions) {
    if (instruction.keyword === 'FROM') {
      stages.push({ index: stages.length, name: stageName(instruction), from: instruction, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage) stage.instructions.push(instruction);
    else if (instruction.keyword === 'ARG') declareArgs(instruction, globalArgs, buildArgs, globalArgs, dockerfile.escapeCharacter);
    else throw new DockerfileError(instruction.line, `${instruction.keyword} before the first FROM: only ARG may come before FROM`);
  }
  if (stages.length === 0) throw new DockerfileError(undefined, 'the Dockerfile has no FROM instruction');
  const target = targetName === undefined ? (stages.at(-1) as Stage) : findStage(stages, targetName.toLowerCase());
  if (!target) throw new DockerfileError(undefined, `target stage "${targetName}" could not be found`);
  const needed = new Set<number>();
  const visit = (stage: Stage) => {
    if (needed.has(stage.index)) return;
    needed.add(stage.index);
    for (const dependency of stageDependencies(stage, stages, globalArgs, dockerfile.escapeCharacter)) visit(dependency);
  };
  visit(target);
  return { escapeCharacter: dockerfile.escapeCharacter, globalArgs, stages, target, needed };
}

/** A stage by name, or by index as `COPY --from=0` names it. */
export function findStage(stages: readonly Stage[], reference: string, before = Number.POSITIVE_INFINITY): Stage | undefined {
  const lowered = reference.toLowerCase();
  const byName = stages.find((stage) => stage.name === lowered && stage.index < before);
  if (byName) return byName;
  return /^\d+$/.test(reference) && Number(reference) < Math.min(before, stages.length) ? stages[Number(reference)] : undefined;
}

/** The stages this one reads, found before anything runs so independent stages can start together. */
function stageDependencies(stage: Stage, stages: readonly Stage[], globalArgs: Variables, escapeCharacter: string): Stage[] {
  const references = [fromImage(stage.from, globalArgs, escapeCharacter)];
  for (const instruction of stage.instructions) {
    const from = flagValue(instruction, 'from');
    if (from !== undefined) references.push(from);
    for (const mount of instruction.flags.filter((flag) => flag.name === 'mount')) {
      const fromOption = /(?:^|,)from=([^,]+)/.exec(mount.value ?? '')?.[1];
      if (fromOption) references.push(fromOption);
    }
  }
  return references.flatMap((reference) => {
    const found = findStage(stages, reference, stage.index);
    return found ? [found] : [];
  });
}

function stageName(from: Instruction): string | undefined {
  const words = from.args.split(/\s+/);
  if (words.length === 1) return undefined;
  if (words.length !== 3 || words[1]?.toLowerCase() !== 'as')
    throw new DockerfileError(from.line, 'FROM requires either one or three arguments (FROM image [AS name])');
  const name = (words[2] as string).toLowerCase();
  if (!/^[a-z][a-z0-9_.-]*$/.test(name)) throw new DockerfileError(from.line, `invalid stage name "${words[2]}"`);
  return name;
}

/** The image (or stage) a FROM names, expanded with the global ARGs only. */
export function fromImage(from: Instruction, globalArgs: Variables, escapeCharacter: string): string {
  const image = expand(from.args.split(/\s+/)[0] as string, globalArgs, escapeCharacter, from.line);
  if (image === '') throw new DockerfileError(from.line, `FROM ${from.args}: the base name expands to nothing`);
  return image;
}

/**
 * ARG name[=default]...: a --build-arg wins, then the default (expanded), then for a stage the global
 * value of a redeclared global ARG. A name with no value stays unset.
 */
export function declareArgs(
  instruction: Instruction,
  scope: Map<string, string>,
  buildArgs: ReadonlyMap<string, string>,
  globalArgs: Variables,
  escapeCharacter: string,
  expansionVariables: Variables = scope,
): string[] {
  const declared: string[] = [];
  for (const word of splitArgWords(instruction.args)) {
    const equals = word.indexOf('=');
    const name = equals === -1 ? word : word.slice(0, equals);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new DockerfileError(instruction.line, `invalid ARG name "${name}"`);
    const fallback =
      equals === -1 ? globalArgs.get(name) : expand(word.slice(equals + 1), expansionVariables, escapeCharacter, instruction.line);
    const value = buildArgs.get(name) ?? fallback;
    if (value !== undefined) scope.set(name, value);
    declared.push(name);
  }
  return declared;
}

function splitArgWords(args: string): string[] {
  return args.match(/(?:[^\s"']+|"(?:\\.|[^"\\])*"|'[^']*')+/g) ?? [];
}

export function expand(text: string, variables: Variables, escapeCharacter: string, line: number): string {
  try {
    return expandWord(text, variables, escapeCharacter);
  } catch (error) {
    if (error instanceof ExpansionError) throw new DockerfileError(line, error.message);
    throw error;
  }
}

/** The words of an instruction's arguments after expansion (ENV, LABEL, EXPOSE, COPY...). */
export function expandList(text: string, variables: Variables, escapeCharacter: string, line: number): string[] {
  try {
    return expandWords(text, variables, escapeCharacter);
  } catch (error) {
    if (error instanceof ExpansionError) throw new DockerfileError(line, error.message);
    throw error;
  }
}
