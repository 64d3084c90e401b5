import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import type { BuildOptions } from '../build/build-api.js';
import type { BuildEvent } from '../build/build-progress.js';
import type { AgentClient } from './agent-client.js';

/**
 * `berth-agent build`: docker build's flags; the context (a directory, filtered by .dockerignore as docker's
 * CLI does, or a tar on stdin) streams to the daemon, which builds; the progress streams back in BuildKit's
 * plain style on stderr.
 */

type ClientOf = (command: Command) => AgentClient;

interface BuildFlags {
  tag?: string[];
  file?: string;
  buildArg?: string[];
  target?: string;
  /** commander's `--no-cache` sets cache to false. */
  cache?: boolean;
  label?: string[];
  progress: string;
  iidfile?: string;
  secret?: string[];
  quiet?: boolean;
  cacheFrom?: string[];
  cacheTo?: string;
  push?: boolean;
  network?: string;
  pull?: boolean;
  platform?: string;
  output?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function addBuildCommand(program: Command, client: ClientOf): void {
  program
    .command('build')
    .description('build an image from a Dockerfile into the agent’s image store')
    .argument('<context>', 'a directory, a git URL (https://host/repo.git#ref:subdir), or - for a tar (or a Dockerfile alone) on stdin')
    .option('-t, --tag <name:tag>', 'name the image (repeatable)', collect)
    .option('-f, --file <path>', 'the Dockerfile (default <context>/Dockerfile; - reads it from stdin)')
    .option('--build-arg <KEY[=VALUE]>', 'set a build argument (KEY alone takes it from here)', collect)
    .option('--target <stage>', 'build this stage')
    .option('--no-cache', 'run every step again')
    .option('--label <KEY=VALUE>', 'add a label to the image', collect)
    .option('--progress <mode>', 'auto, plain or quiet', 'auto')
    .option('--iidfile <file>', 'write the image id to this file')
    .option('--secret <id=ID,src=PATH|env=VAR>', 'a secret for RUN --mount=type=secret (repeatable)', collect)
    .option('-q, --quiet', 'print only the image id')
    .option('--network <mode>', 'the network RUN steps get: default (the containers’ bridge), none or host')
    .option('--pull', 'pull every image FROM names, even one the store has')
    .option('--platform <os/arch>', 'the platform to build for (this host’s own only)')
    .option(
      '-o, --output <type=...>',
      'type=image (the store, the default), or type=oci|docker,dest=FILE for an archive too; oci-mediatypes=false for docker (v2s2) manifests',
    )
    .option('--push', 'push the image under every -t name once built')
    .option('--cache-from <ref>', 'use the build cache in this registry repository (REF or type=registry,ref=REF; repeatable)', collect)
    .option('--cache-to <ref>', 'export every step’s layer and key to this registry repository (REF or type=registry,ref=REF)')
    .action(async (contextArgument: string, flags: BuildFlags, command: Command) => {
      // Loaded here, not at start-up: other commands do not pay for the build's modules.
      const { formatBuildEvent } = await import('../build/build-progress.js');
      const output = parseOutput(flags.output);
      if (!['auto', 'plain', 'quiet', 'tty'].includes(flags.progress))
        throw new Error(`invalid --progress ${flags.progress}: auto, plain or quiet`);
      const quiet = flags.quiet === true || flags.progress === 'quiet';
      const { options, context, remove } = await prepare(contextArgument, flags, output.mediaTypes);
      const last = await client(command)
        .build<BuildEvent>(options, context, (event) => {
          if (quiet) return;
          const text = formatBuildEvent(event);
          if (text !== undefined) process.stderr.write(`${text}\n`);
        })
        .finally(remove);
      if (last?.type !== 'done') {
        const message = last?.type === 'error' ? last.message : 'the daemon ended the build without a result';
        throw new Error(`failed to build: ${message}`);
      }
      if (flags.iidfile) await writeFile(flags.iidfile, last.imageId);
      if (output.archive) {
        const { saveImages } = await import('./image-commands.js');
        await saveImages(client(command), last.tags.length > 0 ? last.tags : [last.imageId], output.archive.format, output.archive.dest);
      }
      if (quiet) process.stdout.write(`${last.imageId}\n`);
    });
}

/** The options and the context stream; `remove` takes down what fetching the context left (a git checkout). */
async function prepare(
  contextArgument: string,
  flags: BuildFlags,
  mediaTypes: OutputChoice['mediaTypes'],
): Promise<{ options: BuildOptions; context: Readable; remove: () => Promise<void> }> {
  if (flags.push === true && (flags.tag ?? []).length === 0)
    throw new Error('a tag is needed when pushing to a registry: give one with -t');
  const base: Omit<BuildOptions, 'dockerfile'> = {
    tags: flags.tag ?? [],
    buildArgs: buildArgs(flags.buildArg ?? []),
    ...(flags.target !== undefined ? { target: flags.target } : {}),
    noCache: flags.cache === false,
    labels: keyValues(flags.label ?? [], '--label'),
    secrets: await Promise.all((flags.secret ?? []).map(readSecret)),
    push: flags.push === true,
    mediaTypes,
    network: runNetwork(flags.network),
    pull: flags.pull === true,
    ...(flags.platform !== undefined ? { platform: flags.platform } : {}),
    cacheFrom: (flags.cacheFrom ?? []).map((spec) => cacheReference(spec, '--cache-from')),
    ...(flags.cacheTo !== undefined ? { cacheTo: cacheReference(flags.cacheTo, '--cache-to') } : {}),
  };
  const { fetchGitContext, parseGitContext } = await import('./git-context.js');
  const gitUrl = parseGitContext(contextArgument);
  if (gitUrl) {
    const checkout = await fetchGitContext(gitUrl);
    try {
      // As docker: -f names a file of the repository, relative to the context.
      const dockerfile = flags.file === '-' ? undefined : path.join(checkout.contextDir, flags.file ?? 'Dockerfile');
      return { ...(await directoryContext(base, checkout.contextDir, dockerfile)), remove: checkout.remove };
    } catch (error) {
      await checkout.remove();
      throw error;
    }
  }
  return { ...(await localContext(base, contextArgument, flags)), remove: async () => undefined };
}

async function localContext(
  base: Omit<BuildOptions, 'dockerfile'>,
  contextArgument: string,
  flags: BuildFlags,
): Promise<{ options: BuildOptions; context: Readable }> {
  if (contextArgument === '-') return stdinContext(base, flags.file);
  const contextDir = path.resolve(contextArgument);
  if (!(await stat(contextDir).catch(() => undefined))?.isDirectory())
    throw new Error(`unable to prepare context: path "${contextArgument}" not found or not a directory`);
  const dockerfilePath =
    flags.file === undefined ? path.join(contextDir, 'Dockerfile') : flags.file === '-' ? undefined : path.resolve(flags.file);
  return directoryContext(base, contextDir, dockerfilePath);
}

/** A directory as the context (filtered by its .dockerignore); the Dockerfile from a file, or from stdin when undefined. */
async function directoryContext(
  base: Omit<BuildOptions, 'dockerfile'>,
  contextDir: string,
  dockerfilePath: string | undefined,
): Promise<{ options: BuildOptions; context: Readable }> {
  const content =
    dockerfilePath === undefined ? await readAll(process.stdin) : await readFile(dockerfilePath, 'utf8').catch(() => undefined);
  if (content === undefined) throw new Error(`unable to prepare context: the Dockerfile ${dockerfilePath} cannot be read`);
  const options = { ...base, dockerfile: { content, path: path.basename(dockerfilePath ?? 'Dockerfile') } };
  // The daemon on this host reads the directory itself, finding `.dockerignore` or `<Dockerfile>.dockerignore`
  // at the context's root; a Dockerfile elsewhere may have its own ignore file beside it, so that context is sent.
  if (dockerfilePath === undefined || path.dirname(dockerfilePath) === contextDir)
    return { options: { ...options, contextPath: contextDir }, context: Readable.from([]) };
  const { loadContextFilter, packContext } = await import('../build/context-files.js');
  const filter = await loadContextFilter(contextDir, dockerfilePath);
  return { options, context: packContext(contextDir, filter) };
}

/** `build -`: a tar on stdin is the context; anything else is a Dockerfile alone, with an empty context. */
async function stdinContext(
  base: Omit<BuildOptions, 'dockerfile'>,
  file: string | undefined,
): Promise<{ options: BuildOptions; context: Readable }> {
  const input = process.stdin[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  while (head.length < 512) {
    const next = await input.next();
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
  }
  const isTar = head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
  if (!isTar) {
    let text = head.toString('utf8');
    for (let next = await input.next(); !next.done; next = await input.next()) text += next.value.toString('utf8');
    return { options: { ...base, dockerfile: { content: text, path: 'Dockerfile' } }, context: Readable.from(emptyTar()) };
  }
  const rest = async function* () {
    yield head;
    for (let next = await input.next(); !next.done; next = await input.next()) yield next.value;
  };
  return { options: { ...base, dockerfile: { path: file ?? 'Dockerfile' } }, context: Readable.from(rest()) };
}

function* emptyTar(): Generator<Buffer> {
  yield Buffer.alloc(1024);
}

/** `KEY=VALUE`, or `KEY` alone taken from this environment (left out when unset), as docker's --build-arg. */
function buildArgs(values: readonly string[]): Record<string, string> {
  const args: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf('=');
    if (equals === -1) {
      const fromEnvironment = process.env[value];
      if (fromEnvironment !== undefined) args[value] = fromEnvironment;
    } else args[value.slice(0, equals)] = value.slice(equals + 1);
  }
  // As docker buildx: SOURCE_DATE_EPOCH in the environment is passed on unless given as a build arg.
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && args.SOURCE_DATE_EPOCH === undefined) args.SOURCE_DATE_EPOCH = epoch;
  return args;
}

function keyValues(values: readonly string[], flag: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf('=');
    if (equals <= 0) throw new Error(`invalid ${flag} ${value}: KEY=VALUE expected`);
    pairs[value.slice(0, equals)] = value.slice(equals + 1);
  }
  return pairs;
}

/** `id=ID,src=PATH` (or `source=`), `id=ID,env=VAR`; a bare `id=ID` reads the variable of that name, as buildx does. */
async function readSecret(spec: string): Promise<{ id: string; value: string }> {
  const fields = new Map(spec.split(',').map((part) => part.split('=', 2) as [string, string]));
  const id = fields.get('id');
  if (!id) throw new Error(`invalid --secret ${spec}: id=ID is required`);
  const source = fields.get('src') ?? fields.get('source');
  if (source !== undefined) return { id, value: (await readFile(source)).toString('base64') };
  const variable = fields.get('env') ?? id;
  const value = process.env[variable];
  if (value === undefined) throw new Error(`invalid --secret ${spec}: neither a file (src=) nor the variable ${variable} is set`);
  return { id, value: Buffer.from(value).toString('base64') };
}

/** What `--output` asks for: the manifests' media types, and an archive written besides the store. */
interface OutputChoice {
  mediaTypes: 'oci' | 'docker';
  archive: { format: 'oci' | 'docker'; dest: string | undefined } | undefined;
}

/**
 * buildx's `--output`: `type=image` (the default) keeps the result in the store only; `type=oci` and
 * `type=docker` also write it as an archive (a plain OCI layout, or docker's `save` layout) to `dest`
 * (`-` for stdout; type=docker without dest is the store alone). Other exporters (local, tar) are refused.
 * Manifests are OCI's except with type=docker, as buildx's docker exporter; `oci-mediatypes=` chooses.
 */
function parseOutput(spec: string | undefined): OutputChoice {
  if (spec === undefined) return { mediaTypes: 'oci', archive: undefined };
  const fields = new Map(spec.split(',').map((part) => part.split('=', 2) as [string, string | undefined]));
  const type = fields.get('type') ?? (spec.includes('=') ? undefined : 'local');
  if (type !== 'image' && type !== 'docker-image' && type !== 'oci' && type !== 'docker')
    throw new Error(`invalid --output ${spec}: type=image, type=oci or type=docker`);
  for (const key of fields.keys())
    if (!OUTPUT_KEYS.has(key)) throw new Error(`invalid --output ${spec}: unknown option ${key} (type, dest, oci-mediatypes)`);
  const mediaTypes = ociMediaTypes(fields.get('oci-mediatypes'), type === 'docker', spec) ? 'oci' : 'docker';
  const dest = fields.get('dest');
  // buildx's type=docker without dest loads the image into the engine: here it is in the store already.
  if (type === 'image' || type === 'docker-image' || (!dest && type === 'docker')) return { mediaTypes, archive: undefined };
  if (!dest) throw new Error(`invalid --output ${spec}: dest=FILE is required for type=${type}`);
  if (dest === '-' && process.stdout.isTTY) throw new Error('cowardly refusing to write an archive to a terminal: give dest=FILE');
  return { mediaTypes, archive: { format: type, dest: dest === '-' ? undefined : dest } };
}

const OUTPUT_KEYS = new Set(['type', 'dest', 'oci-mediatypes']);

function ociMediaTypes(value: string | undefined, dockerExporter: boolean, spec: string): boolean {
  if (value === undefined) return !dockerExporter;
  if (value !== 'true' && value !== 'false') throw new Error(`invalid --output ${spec}: oci-mediatypes is true or false`);
  return value === 'true';
}

function runNetwork(value: string | undefined): 'default' | 'none' | 'host' {
  if (value === undefined || value === 'default' || value === 'bridge') return 'default';
  if (value === 'none' || value === 'host') return value;
  throw new Error(`invalid --network ${value}: default, none or host`);
}

/** Cache export options that every Berth cache has already (an image manifest, OCI types, every layer). */
const FIXED_CACHE_OPTIONS = new Map([
  ['mode', 'max'],
  ['image-manifest', 'true'],
  ['oci-mediatypes', 'true'],
]);

/**
 * `REF` or buildx's `type=registry,ref=REF[,mode=max]`: the registry repository of a build cache. Only the
 * registry type exists here, and it always keeps every intermediate layer (buildx's mode=max).
 */
function cacheReference(spec: string, flag: string): string {
  if (!spec.includes('=')) return spec;
  const fields = new Map(spec.split(',').map((part) => part.split('=', 2) as [string, string | undefined]));
  const type = fields.get('type') ?? 'registry';
  if (type !== 'registry') throw new Error(`invalid ${flag} ${spec}: only type=registry is supported`);
  const ref = fields.get('ref');
  if (!ref) throw new Error(`invalid ${flag} ${spec}: ref=REPOSITORY[:TAG] is required`);
  for (const [key, value] of fields) {
    if (key === 'type' || key === 'ref') continue;
    const fixed = FIXED_CACHE_OPTIONS.get(key);
    if (fixed === undefined) throw new Error(`invalid ${flag} ${spec}: unknown option ${key}`);
    if (value !== fixed) throw new Error(`invalid ${flag} ${spec}: only ${key}=${fixed} is supported`);
  }
  return ref;
}

async function readAll(input: NodeJS.ReadStream): Promise<string> {
  let text = '';
  for await (const chunk of input) text += String(chunk);
  return text;
}
