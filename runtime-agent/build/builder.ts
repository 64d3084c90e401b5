import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chainIds, digestOf } from '../../oci/digest.js';
import { layerTypeIn, MANIFEST_TYPES, type ManifestFamily } from '../../oci/media-types.js';
import { formatPlatform, platformRank, type Platform } from '../../oci/platform.js';
import type { ContentStore } from '../content/content-store.js';
import type { MountSpec } from '../container/container-spec.js';
import type { ImageRecord, ImageStore, LayerRecord } from '../image/image-store.js';
import type { Lease, Leases } from '../image/leases.js';
import type { RegistryAccess } from '../registry/registry-access.js';
import { LayeredRoot, type OpaqueMarks } from '../snapshot/layered-root.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { prepareOverlay, type OverlayDirectories } from '../spec/rootfs.js';
import { resolveUserSpec, UserLookupError } from '../spec/user-lookup.js';
import { unpackLayer } from '../unpack/layer-unpacker.js';
import type { BuildCache, CacheEntry, CachedLayer } from './build-cache.js';
import type { ImagePublisher } from './image-publisher.js';
import { formatRepositoryTag, type CacheReference, type CacheRegistry, type RemoteCache } from './registry-cache.js';
import { BuildContext, type ContextSource } from './build-context.js';
import { declareArgs, expand, expandList, findStage, fromImage, planBuild, PROXY_ARGS, type BuildPlan, type Stage } from './build-plan.js';
import { contextFilter, loadContextFilter, type ContextFilter } from './context-files.js';
import { archiveCompression, downloadSource, isUrl, unpackArchive } from './add-sources.js';
import { checkFlags, DockerfileError, flagValue, instructionText, parseDockerfile, parseTrigger, type Instruction } from './dockerfile.js';
import { copyIntoRoot, type CopyItem } from './file-copier.js';
import { DirectRoot } from './direct-root.js';
import { applyMetadata, commandOf, DEFAULT_SHELL, metadataHistory, type ConfigDocument, type HistoryEntry } from './image-config.js';
import { isEmptyDirectory, movedUpperFill, writeLayer } from './layer-writer.js';
import { sourcesInLayers } from './layer-sources.js';
import { BuildProgress, type BuildEvent } from './build-progress.js';
import { removeStubs, type RunNetwork, type RunSandbox } from './run-sandbox.js';
import { mountFilesystem, unmountFilesystem } from '../support/linux-mount.js';

/**
 * Builds an image from a Dockerfile on the agent's own parts: each stage's root is an overlay of snapshots,
 * RUN runs in the container sandbox, each changing step's upper directory becomes a layer in the content
 * store and a snapshot, and the result is recorded in the image store. Stages start together and wait only
 * for the stages they read; stages the target does not need never run.
 */

export interface BuildRequest {
  dockerfile: string;
  dockerfileName: string;
  /** The extracted build context. */
  contextDir: string;
  buildArgs: Map<string, string>;
  target: string | undefined;
  noCache: boolean;
  labels: Record<string, string>;
  /** Canonical references (`registry/repository:tag`). */
  tags: Array<{ registry: string; repository: string; tag: string }>;
  secrets: Map<string, Buffer>;
  /** Seconds since the epoch: clamps file times, sets the config's and history's times. */
  sourceDateEpoch: number | undefined;
  /** Aborting it stops the build: a running RUN step is killed, no further step starts. */
  signal: AbortSignal;
  /** Registry caches whose steps count as cached here (`--cache-from`), in the order given. */
  cacheFrom: CacheReference[];
  /** Where every step of this build (intermediate ones included) is exported (`--cache-to`). */
  cacheTo: CacheReference | undefined;
  /** Push the image under every tag once it is built (`--push`). */
  push: boolean;
  /** How the cache's and the pushes' registry is reached: the agent's saved credentials, or a build job's token. */
  registryAccess: RegistryAccess;
  /** RUN's network unless the instruction names one (`build --network`). */
  network: RunNetwork;
  /** Pull every image FROM or --from names, even one the store has (`--pull`). */
  pull: boolean;
  /** `--platform`: the platform to build for; only one this host runs is accepted. */
  platform: Platform | undefined;
  /** OCI's manifest, config and layer media types, or docker's (v2s2): `--output oci-mediatypes=`. */
  mediaTypes: ManifestFamily;
}

export interface BuildResult {
  imageId: string;
  manifestDigest: string;
}

export interface BuilderServices {
  content: ContentStore;
  snapshots: Snapshotter;
  images: ImageStore;
  leases: Leases;
  sandbox: RunSandbox;
  /** Which snapshot directories are opaque, remembered across steps and builds (shared with the sandbox). */
  opaqueMarks: OpaqueMarks;
  cache: BuildCache;
  cacheRegistry: CacheRegistry;
  publisher: ImagePublisher;
  /** Per-build scratch space (mounts, uppers, secrets), removed after each build. */
  workRoot: string;
  /** Where RUN --mount=type=cache directories persist between builds. */
  cacheMountsRoot: string;
  platform: Platform;
  /** A base image from the store, pulled when missing or when `pull` is set. */
  resolveImage: (reference: string, pull: boolean, report: (message: string) => void) => Promise<ImageRecord>;
}

interface StageResult {
  layers: LayerRecord[];
  config: ConfigDocument;
  key: string;
  /** The stage's ARG values at its end, which a stage built FROM it starts with (BuildKit's rule). */
  args: ReadonlyMap<string, string>;
}

/** What COPY/ADD copies: the cache key of its content, and the items themselves when the step runs. */
interface CopySources {
  key: string;
  open(): Promise<OpenedSources>;
}

interface OpenedSources {
  items: CopyItem[];
  filter: ContextFilter | undefined;
  /** Unmounts a --from root. */
  release: () => Promise<void>;
}

/** What --from reads: a mounted root and how to take it down. */
interface SourceRoot {
  root: string;
  key: string;
  release: () => Promise<void>;
}

const EMPTY_DIRECTORY = 'empty';
/** A metadata step's history time until the image is written: that of the layer step before it (see datedHistory). */
const UNDATED = '';
const FS_KEYWORDS = new Set(['RUN', 'COPY', 'ADD', 'WORKDIR']);

export class ImageBuilder {
  constructor(private readonly services: BuilderServices) {}

  async build(request: BuildRequest, report: (event: BuildEvent) => void): Promise<BuildResult> {
    const progress = new BuildProgress(report);
    const work = path.join(this.services.workRoot, randomBytes(8).toString('hex'));
    await mkdir(path.join(work, EMPTY_DIRECTORY), { recursive: true, mode: 0o700 });
    const lease = await this.services.leases.acquire();
    try {
      if (request.platform) checkBuildPlatform(request.platform, this.services.platform);
      const definition = progress.begin(`[internal] load build definition from ${request.dockerfileName}`);
      const parsed = parseDockerfile(request.dockerfile, request.dockerfileName);
      const plan = planBuild(parsed, request.buildArgs, this.services.platform, request.target);
      progress.done(definition);
      // `<Dockerfile>.dockerignore` wins over `.dockerignore`, as the CLI chose when it sent the context.
      const filter = await loadContextFilter(request.contextDir, path.join(request.contextDir, path.basename(request.dockerfileName)));
      const context = new BuildContext(request.contextDir, filter);
      const build = new BuildRun(this.services, request, plan, context, progress, work, lease);
      return await build.run();
    } finally {
      lease.release();
      await rm(work, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

/** One build: its plan, the stage results as promises, the scratch directory and the lease on what it uses. */
class BuildRun {
  private readonly results = new Map<number, Promise<StageResult>>();
  private readonly created: string;
  private aborted = false;
  private scratchCounter = 0;
  private remotes: RemoteCache[] = [];
  /** Every filesystem step of this build by cache key: what `--cache-to` exports. */
  private readonly steps = new Map<string, CacheEntry>();
  /** Each image reference resolves (and with --pull, is pulled) once per build: every stage sees the same image. */
  private readonly images = new Map<string, Promise<ImageRecord>>();

  constructor(
    readonly services: BuilderServices,
    readonly request: BuildRequest,
    readonly plan: BuildPlan,
    readonly context: BuildContext,
    readonly progress: BuildProgress,
    readonly work: string,
    readonly lease: Lease,
  ) {
    const epoch = request.sourceDateEpoch;
    this.created = epoch === undefined ? new Date().toISOString() : new Date(epoch * 1000).toISOString();
  }

  async run(): Promise<BuildResult> {
    if (!this.request.noCache) this.remotes = await this.importCaches();
    for (const index of [...this.plan.needed].sort((a, b) => a - b)) this.stageResult(index);
    const settled = await Promise.allSettled([...this.results.values()]);
    const failure = settled.find((outcome) => outcome.status === 'rejected');
    if (failure) throw failure.reason;
    const result = await this.record(await this.stageResult(this.plan.target.index));
    if (this.request.push) await this.pushTags(result.manifestDigest);
    if (this.request.cacheTo) await this.exportCache(this.request.cacheTo);
    return result;
  }

  /** A step's cache entry: the agent's own, else the first `--cache-from` cache that has it (its layer fetched). */
  async lookupCache(key: string): Promise<CacheEntry | undefined> {
    if (this.request.noCache) return undefined;
    const local = await this.services.cache.get(key);
    if (local) return local;
    for (const remote of this.remotes) {
      const entry = remote.entry(key);
      if (!entry) continue;
      if (entry.layer) {
        await this.lease.add([entry.layer.digest]);
        if (!(await remote.fetch(entry.layer))) continue;
      }
      await this.services.cache.put(key, entry);
      return entry;
    }
    return undefined;
  }

  /** An image FROM or --from names; the first caller's report shows the pull. */
  resolveImage(reference: string, report: (message: string) => void): Promise<ImageRecord> {
    let record = this.images.get(reference);
    if (!record) {
      record = this.services.resolveImage(reference, this.request.pull, report);
      this.images.set(reference, record);
    }
    return record;
  }

  /** Notes a step's outcome for `--cache-to`. */
  remember(key: string, entry: CacheEntry): void {
    this.steps.set(key, entry);
  }

  /**
   * `--cache-from`: each cache's key map read once, before any step, all at once (a branch's build imports its
   * own cache and the default branch's); one that cannot be read is reported and skipped. Steps look in them in
   * the order given.
   */
  private async importCaches(): Promise<RemoteCache[]> {
    const imported = await Promise.all(this.request.cacheFrom.map((reference) => this.importCache(reference)));
    return imported.filter((remote) => remote !== undefined);
  }

  private async importCache(reference: CacheReference): Promise<RemoteCache | undefined> {
    const id = this.progress.begin(`importing cache manifest from ${formatRepositoryTag(reference)}`);
    const report = (message: string) => this.progress.log(id, message);
    try {
      return await this.services.cacheRegistry.load(reference, this.request.registryAccess, report);
    } catch (error) {
      // As BuildKit: a cache that cannot be imported makes a slower build, not a failed one.
      report(`cannot import the cache: ${(error as Error).message}`);
      return undefined;
    } finally {
      this.progress.done(id);
    }
  }

  /** `--push`: each tag in turn, as BuildKit's image exporter with push=true. */
  private async pushTags(manifestDigest: string): Promise<void> {
    for (const tag of this.request.tags) {
      const name = formatRepositoryTag(tag);
      const id = this.progress.begin(`pushing ${name}`);
      try {
        const pushed = await this.services.publisher.push(manifestDigest, tag, this.request.registryAccess, (line) =>
          this.progress.log(id, line),
        );
        this.progress.log(id, `pushing manifest for ${name}@${pushed.digest} done`);
        this.progress.done(id);
      } catch (error) {
        this.progress.failed(id, (error as Error).message);
        throw new Error(`pushing ${name}: ${(error as Error).message}`, { cause: error });
      }
    }
  }

  private async exportCache(reference: CacheReference): Promise<void> {
    const id = this.progress.begin(`exporting cache to registry ${formatRepositoryTag(reference)}`);
    try {
      const records = [...this.steps].map(([key, entry]) => ({ key, entry }));
      await this.services.cacheRegistry.save(reference, records, this.lease, this.request.registryAccess, (message) =>
        this.progress.log(id, message),
      );
      this.progress.done(id);
    } catch (error) {
      this.progress.failed(id, (error as Error).message);
      throw new Error(`exporting the build cache to ${formatRepositoryTag(reference)}: ${(error as Error).message}`, { cause: error });
    }
  }

  stageResult(index: number): Promise<StageResult> {
    let result = this.results.get(index);
    if (!result) {
      result = new StageRun(this, this.plan.stages[index] as Stage).run().catch((error: unknown) => {
        this.aborted = true;
        throw error;
      });
      this.results.set(index, result);
    }
    return result;
  }

  get isAborted(): boolean {
    return this.aborted || this.request.signal.aborted;
  }

  get createdAt(): string {
    return this.created;
  }

  scratch(name: string): string {
    return path.join(this.work, `${name}-${++this.scratchCounter}`);
  }

  emptyDirectory(): string {
    return path.join(this.work, EMPTY_DIRECTORY);
  }

  /** Writes config and manifest, and records the image under each tag (or untagged). */
  private async record(result: StageResult): Promise<BuildResult> {
    const { content, images, snapshots } = this.services;
    const history = datedHistory(result.config.history, this.created);
    const config: ConfigDocument = { ...result.config, history, created: history.at(-1)?.created ?? this.created };
    if (Object.keys(this.request.labels).length > 0)
      config.config = { ...config.config, Labels: { ...config.config.Labels, ...this.request.labels } };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = digestOf(configBytes);
    await this.lease.add([configDigest]);
    await content.writeSmall(configDigest, configBytes);
    const types = MANIFEST_TYPES[this.request.mediaTypes];
    const manifest = {
      schemaVersion: 2,
      mediaType: types.manifest,
      config: { mediaType: types.config, digest: configDigest, size: configBytes.length },
      // A base image's layers take the family of the manifest that lists them, as BuildKit's exporter does.
      layers: result.layers.map((layer) => ({
        mediaType: layerTypeIn(layer.mediaType, this.request.mediaTypes),
        digest: layer.digest,
        size: layer.size,
      })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = digestOf(manifestBytes);
    await this.lease.add([manifestDigest]);
    await content.writeSmall(manifestDigest, manifestBytes);
    let size = 0;
    for (const layer of result.layers) size += (await snapshots.info(layer.chainId))?.size ?? 0;
    const base = {
      digest: manifestDigest,
      manifestDigest,
      configDigest,
      layers: result.layers,
      platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
      created: config.created ?? this.created,
      size,
      pulledAt: new Date().toISOString(),
    };
    const names = this.request.tags.length > 0 ? this.request.tags : [undefined];
    for (const name of names) {
      await images.put(
        name
          ? {
              ...base,
              reference: `${name.registry}/${name.repository}:${name.tag}`,
              registry: name.registry,
              repository: name.repository,
              tag: name.tag,
            }
          : { ...base, reference: configDigest, registry: '', repository: '<none>', tag: undefined },
      );
    }
    return { imageId: configDigest, manifestDigest };
  }
}

/** One stage's execution: its filesystem (layers), config, cache key and ARG scope as instructions go by. */
class StageRun {
  private layers: LayerRecord[] = [];
  private config!: ConfigDocument;
  private key = '';
  private readonly args = new Map<string, string>();
  private cmdSet = false;
  private step = 1;
  private total: number;
  private readonly label: string;

  constructor(
    private readonly build: BuildRun,
    private readonly stage: Stage,
  ) {
    this.total = 1 + stage.instructions.filter((instruction) => FS_KEYWORDS.has(instruction.keyword)).length;
    const name = stage.name ?? (build.plan.stages.length > 1 ? `stage-${stage.index}` : '');
    this.label = name === '' ? '' : `${name} `;
  }

  private get escapeCharacter(): string {
    return this.build.plan.escapeCharacter;
  }

  /** Build args in scope and the image's Env, the Env winning: what `$VAR` means in an instruction. */
  private variables(): Map<string, string> {
    const variables = new Map(this.args);
    for (const entry of this.config.config.Env ?? []) {
      const equals = entry.indexOf('=');
      if (equals > 0) variables.set(entry.slice(0, equals), entry.slice(equals + 1));
    }
    return variables;
  }

  async run(): Promise<StageResult> {
    const triggers = await this.from();
    for (const instruction of [...triggers, ...this.stage.instructions]) {
      if (this.build.isAborted) throw new Error('build aborted');
      await this.dispatch(instruction);
    }
    return { layers: this.layers, config: this.config, key: this.key, args: new Map(this.args) };
  }

  private stepName(instruction: Instruction | string): string {
    const text = typeof instruction === 'string' ? instruction : instructionText(instruction);
    return `[${this.label}${this.step}/${this.total}] ${text}`;
  }

  /** FROM: scratch, an earlier stage, or an image (pulled when missing); returns the base's ONBUILD triggers. */
  private async from(): Promise<Instruction[]> {
    const { from } = this.stage;
    checkFlags(from, ['platform']);
    this.checkPlatform(from);
    const reference = fromImage(from, this.build.plan.globalArgs, this.escapeCharacter);
    // Shown once the base's ONBUILD triggers are counted in the stage's steps, or as soon as a pull reports.
    let id: number | undefined;
    const step = () => (id ??= this.build.progress.begin(this.stepName(`FROM ${reference}`)));
    const pulled = await this.resolveBase(reference, (message) => this.build.progress.log(step(), message));
    const triggers = (this.config.config.OnBuild ?? []).map((trigger) => parseTrigger(trigger, from.line, this.escapeCharacter));
    this.config.config.OnBuild = null;
    this.total += triggers.filter((trigger) => FS_KEYWORDS.has(trigger.keyword)).length;
    if (!pulled) this.build.progress.cached(step());
    this.build.progress.done(step());
    return triggers;
  }

  /** Sets the stage's start from scratch, an earlier stage or an image; returns whether an image was pulled. */
  private async resolveBase(reference: string, report: (message: string) => void): Promise<boolean> {
    if (reference === 'scratch') {
      this.config = emptyConfig(this.build.services.platform);
      this.key = digestOf('scratch');
      return false;
    }
    const dependency = findStage(this.build.plan.stages, reference, this.stage.index);
    if (dependency) {
      // The stage's own steps show their work; starting from its result is nothing to do.
      const result = await this.build.stageResult(dependency.index);
      this.layers = [...result.layers];
      this.config = structuredClone(result.config);
      for (const [name, value] of result.args) this.args.set(name, value);
      this.key = digestOf(`stage ${result.key}`);
      return false;
    }
    let pulled = false;
    const record = await this.build.resolveImage(reference, (message) => {
      pulled = true;
      report(message);
    });
    await this.build.lease.add(record.layers.flatMap((layer) => [layer.digest, layer.chainId]));
    this.layers = [...record.layers];
    this.config = baseConfig(JSON.parse((await this.build.services.content.readSmall(record.configDigest)).toString('utf8')));
    this.key = digestOf(`image ${record.configDigest}`);
    return pulled;
  }

  private checkPlatform(from: Instruction): void {
    const wanted = flagValue(from, 'platform');
    if (wanted === undefined) return;
    const platform = this.build.services.platform;
    const value = expand(wanted, this.build.plan.globalArgs, this.escapeCharacter, from.line);
    const own = `${platform.os}/${platform.architecture}`;
    if (value !== own && value !== `${own}/${platform.variant ?? ''}`.replace(/\/$/, ''))
      throw new DockerfileError(from.line, `FROM --platform=${value}: this builder builds for ${own} only`);
  }

  private async dispatch(instruction: Instruction): Promise<void> {
    switch (instruction.keyword) {
      case 'ARG': {
        checkFlags(instruction, []);
        declareArgs(
          instruction,
          this.args,
          this.build.request.buildArgs,
          this.build.plan.globalArgs,
          this.escapeCharacter,
          this.variables(),
        );
        return this.metadataHistory(`ARG ${instruction.args}`);
      }
      case 'RUN':
        return this.runStep(instruction);
      case 'COPY':
      case 'ADD':
        return this.copyStep(instruction);
      case 'WORKDIR':
        return this.workdirStep(instruction);
      default: {
        ({ cmdSet: this.cmdSet } = applyMetadata(this.config, instruction, {
          variables: this.variables(),
          escapeCharacter: this.escapeCharacter,
          cmdSet: this.cmdSet,
        }));
        return this.metadataHistory(metadataHistory(instruction, this.config));
      }
    }
  }

  private metadataHistory(createdBy: string): void {
    this.config.history.push({
      created: UNDATED,
      created_by: createdBy,
      comment: 'buildkit.dockerfile.v0',
      empty_layer: true,
    });
  }

  private async workdirStep(instruction: Instruction): Promise<void> {
    checkFlags(instruction, []);
    const directory = path.posix.resolve(
      this.config.config.WorkingDir || '/',
      expand(instruction.args, this.variables(), this.escapeCharacter, instruction.line),
    );
    this.config.config.WorkingDir = directory;
    const user = this.config.config.User ?? '';
    await this.filesystemStep(instruction, `WORKDIR ${directory}`, { workdir: directory, user }, 'files', async (overlay) => {
      const root = this.directRoot(overlay);
      // As BuildKit does, the directories WORKDIR creates belong to the current USER.
      const owner = user === '' ? undefined : await resolveOwner(root, user, instruction.line, `USER ${user}`);
      await root.ensureDirectory(directory, owner);
    });
  }

  private async runStep(instruction: Instruction): Promise<void> {
    checkFlags(instruction, ['mount', 'network', 'security'], ['mount']);
    const network = this.runNetwork(instruction);
    const security = flagValue(instruction, 'security') ?? 'sandbox';
    if (security !== 'sandbox')
      throw new DockerfileError(instruction.line, `RUN --security=${security} is not allowed: RUN gets no more privilege than a container`);
    const args = runArgs(instruction, this.config.config.Shell);
    const mounts = instruction.flags.filter((flag) => flag.name === 'mount').map((flag) => parseMount(flag.value ?? '', instruction.line));
    const argEnv = this.runArgEnv();
    const historyArgs = [...this.args].filter(([name]) => !PROXY_ARGS.has(name)).map(([name, value]) => `${name}=${value}`);
    const prefix = historyArgs.length > 0 ? `|${historyArgs.length} ${historyArgs.join(' ')} ` : '';
    const fromRoots = await this.mountSourceRoots(mounts, instruction);
    try {
      await this.runInSandbox(instruction, { args, argEnv, network }, `RUN ${prefix}${args.join(' ')} # buildkit`, mounts, fromRoots);
    } finally {
      for (const root of fromRoots.values()) await root.release();
    }
  }

  /**
   * `RUN --network=` wins over the build's `--network`; the host's network is an entitlement the build must
   * grant (`build --network host`, as buildx's `--allow network.host`), never one a Dockerfile takes.
   */
  private runNetwork(instruction: Instruction): RunNetwork {
    const chosen = this.build.request.network;
    const value = flagValue(instruction, 'network');
    if (value === undefined) return chosen;
    if (value !== 'default' && value !== 'none' && value !== 'host')
      throw new DockerfileError(instruction.line, `RUN --network=${value}: the network is default, none or host`);
    if (value === 'host' && chosen !== 'host')
      throw new DockerfileError(instruction.line, 'RUN --network=host is only allowed in a build started with --network host');
    return value === 'default' ? chosen : value;
  }

  /** The roots of the stages or images `--mount=type=bind,from=` names, mounted for the step. */
  private async mountSourceRoots(mounts: readonly RunMount[], instruction: Instruction): Promise<Map<RunMount, SourceRoot>> {
    const roots = new Map<RunMount, SourceRoot>();
    try {
      for (const mount of mounts) {
        if (mount.type === 'bind' && mount.from !== undefined)
          roots.set(
            mount,
            await this.sourceRoot(expand(mount.from, this.variables(), this.escapeCharacter, instruction.line), instruction),
          );
      }
    } catch (error) {
      for (const root of roots.values()) await root.release();
      throw error;
    }
    return roots;
  }

  private async runInSandbox(
    instruction: Instruction,
    { args, argEnv, network }: { args: string[]; argEnv: string[]; network: RunNetwork },
    createdBy: string,
    mounts: readonly RunMount[],
    fromRoots: ReadonlyMap<RunMount, SourceRoot>,
  ): Promise<void> {
    const keyParts = {
      args,
      env: this.config.config.Env ?? [],
      argEnv,
      user: this.config.config.User ?? '',
      workdir: this.config.config.WorkingDir || '/',
      network,
      // A bind is keyed by what it shows: a stage's or image's root by its key, a context path by its content.
      mounts: await Promise.all(
        mounts.map(async (mount) => ({ ...mount, value: undefined, fromKey: await this.bindKey(mount, instruction, fromRoots) })),
      ),
    };
    await this.filesystemStep(instruction, createdBy, keyParts, 'run', async (overlay, bundle, id) => {
      const prepared = await this.prepareMounts(mounts, instruction, fromRoots);
      const lastLines: string[] = [];
      const { exitCode, stubs } = await this.build.services.sandbox.run({
        id: `berth-build-${randomBytes(6).toString('hex')}`,
        bundle,
        overlay,
        args,
        env: this.config.config.Env ?? [],
        argEnv: [...argEnv, ...prepared.env],
        user: this.config.config.User || undefined,
        workingDir: this.config.config.WorkingDir || '/',
        mounts: prepared.mounts,
        network,
        signal: this.build.request.signal,
        onOutput: (line) => {
          lastLines.push(line);
          if (lastLines.length > 10) lastLines.shift();
          this.build.progress.log(id, line);
        },
      });
      // runc has exited: the overlay went with the container's mount namespace.
      await removeStubs(overlay.upper, stubs);
      if (exitCode !== 0) {
        const output = lastLines.length > 0 ? `\n${lastLines.map((text) => `  > ${text}`).join('\n')}` : '';
        throw new RunFailedError(
          instruction.line,
          `${instructionText(instruction)}: process "${args.join(' ')}" did not complete successfully: exit code: ${exitCode}${output}`,
          exitCode,
        );
      }
    });
  }

  /** The content a bind mount shows, for the step's cache key: empty for the other mount types. */
  private async bindKey(mount: RunMount, instruction: Instruction, fromRoots: ReadonlyMap<RunMount, SourceRoot>): Promise<string> {
    if (mount.type !== 'bind') return '';
    const fromRoot = fromRoots.get(mount);
    if (fromRoot) return fromRoot.key;
    const context = this.build.context;
    return context.digest(await context.resolve([mount.source ?? '.'], instruction.line));
  }

  /** Build args in scope and the proxy variables given as build args: the RUN's environment, never the image's. */
  private runArgEnv(): string[] {
    const env = [...this.args].map(([name, value]) => `${name}=${value}`);
    for (const [name, value] of this.build.request.buildArgs)
      if (PROXY_ARGS.has(name) && !this.args.has(name)) env.push(`${name}=${value}`);
    return env;
  }

  private async prepareMounts(
    mounts: readonly RunMount[],
    instruction: Instruction,
    fromRoots: ReadonlyMap<RunMount, SourceRoot>,
  ): Promise<{ mounts: MountSpec[]; env: string[] }> {
    const specs: MountSpec[] = [];
    const env: string[] = [];
    for (const mount of mounts) {
      if (mount.type === 'secret') {
        const id = mount.id ?? path.posix.basename(mount.target ?? '');
        const value = this.build.request.secrets.get(id);
        if (value === undefined) {
          if (mount.required)
            throw new DockerfileError(instruction.line, `secret ${id} is required but was not given (--secret id=${id},...)`);
          continue;
        }
        if (mount.env) env.push(`${mount.env}=${value.toString('utf8')}`);
        if (mount.env && mount.target === undefined) continue;
        const file = this.build.scratch('secret');
        await writeFile(file, value, { mode: mount.mode ?? 0o400 });
        await chown(file, mount.uid ?? 0, mount.gid ?? 0);
        specs.push({ type: 'bind', source: file, target: mount.target ?? `/run/secrets/${id}`, readOnly: true });
      } else if (mount.type === 'cache') {
        const target = requireTarget(mount, instruction);
        const directory = path.join(this.build.services.cacheMountsRoot, digestOf(mount.id ?? target).slice('sha256:'.length));
        await mkdir(directory, { recursive: true, mode: mount.mode ?? 0o755 });
        await chown(directory, mount.uid ?? 0, mount.gid ?? 0);
        specs.push({ type: 'bind', source: directory, target, readOnly: mount.readOnly });
      } else if (mount.type === 'tmpfs') {
        const target = requireTarget(mount, instruction);
        specs.push({ type: 'tmpfs', target, options: ['nosuid', 'nodev', ...(mount.size ? [`size=${mount.size}`] : [])] });
      } else {
        const target = requireTarget(mount, instruction);
        if (!mount.readOnly) throw new DockerfileError(instruction.line, 'RUN --mount=type=bind,rw is not supported yet');
        const fromRoot = fromRoots.get(mount);
        const context = fromRoot ? new BuildContext(fromRoot.root, contextFilter(''), 'confine') : this.build.context;
        const [source] = await context.resolve([mount.source ?? '.'], instruction.line);
        specs.push({
          type: 'bind',
          source: (source as ContextSource).hostPath,
          target: path.posix.resolve(this.config.config.WorkingDir || '/', target),
          readOnly: true,
        });
      }
    }
    return { mounts: specs, env };
  }

  private async copyStep(instruction: Instruction): Promise<void> {
    const isAdd = instruction.keyword === 'ADD';
    checkFlags(instruction, ['from', 'chown', 'chmod', 'link', 'exclude', ...(isAdd ? ['checksum'] : [])], ['exclude']);
    const variables = this.variables();
    const words =
      instruction.heredocs.length > 0
        ? expandList(instruction.args, variables, this.escapeCharacter, instruction.line)
        : (instruction.json ?? expandList(instruction.args, variables, this.escapeCharacter, instruction.line));
    if (words.length < 2)
      throw new DockerfileError(
        instruction.line,
        `${instruction.keyword} requires at least two arguments, but only one was provided. Destination could not be determined`,
      );
    const rawDestination = words.at(-1) as string;
    const patterns = words.slice(0, -1);
    const workdir = this.config.config.WorkingDir || '/';
    const destination = path.posix.resolve(workdir, rawDestination) + (rawDestination.endsWith('/') && rawDestination !== '/' ? '/' : '');
    const chownValue = flagValue(instruction, 'chown');
    const chmodValue = flagValue(instruction, 'chmod');
    const mode = chmodValue === undefined ? undefined : parseChmod(chmodValue, instruction.line);
    const excludes = instruction.flags.filter((flag) => flag.name === 'exclude').map((flag) => flag.value ?? '');
    const sources = await this.copySources(instruction, patterns, excludes, variables, isAdd);
    const keyParts = { destination, chown: chownValue ?? '', chmod: chmodValue ?? '', sources: sources.key };
    await this.filesystemStep(instruction, `${instructionText(instruction)} # buildkit`, keyParts, 'files', async (overlay) => {
      const root = this.directRoot(overlay);
      const { items, filter, release } = await sources.open();
      try {
        if (items.length > 1 && !destination.endsWith('/'))
          throw new DockerfileError(
            instruction.line,
            `When using ${instruction.keyword} with more than one source file, the destination must be a directory and end with a /`,
          );
        const chownSpec = chownValue === undefined ? undefined : expand(chownValue, variables, this.escapeCharacter, instruction.line);
        const owner = chownSpec === undefined ? undefined : await resolveOwner(root, chownSpec, instruction.line, `--chown=${chownSpec}`);
        await copyIntoRoot(root, items, destination, { owner, mode, filter });
      } finally {
        await release();
      }
    });
  }

  /** A COPY's or WORKDIR's root: written straight into the step's upper directory, read through the layers. */
  private directRoot(overlay: OverlayDirectories): DirectRoot {
    return new DirectRoot(overlay.upper, overlay.lowerDirsTopFirst, this.build.services.opaqueMarks);
  }

  /**
   * The cache key of what a COPY/ADD copies, and how to get the items (`release` unmounts a --from root). The
   * content of another stage or image follows from its key: a cache hit mounts nothing.
   */
  private async copySources(
    instruction: Instruction,
    patterns: string[],
    excludes: string[],
    variables: Map<string, string>,
    isAdd: boolean,
  ): Promise<CopySources> {
    const none = async () => undefined;
    const ready = (items: CopyItem[], filter: ContextFilter | undefined) => async () => ({ items, filter, release: none });
    if (instruction.heredocs.length > 0) {
      const { items, key } = await this.heredocSources(instruction, patterns, variables);
      return { key, open: ready(items, undefined) };
    }
    const fromValue = flagValue(instruction, 'from');
    if (fromValue !== undefined) {
      const source = await this.sourceLayers(expand(fromValue, variables, this.escapeCharacter, instruction.line), instruction);
      return {
        key: `${source.key} ${JSON.stringify([patterns, excludes])}`,
        open: () => this.openFromSources(source, patterns, excludes, instruction),
      };
    }
    if (!isAdd) {
      const { context, found } = await resolveExcluding(this.build.context, patterns, excludes, instruction.line);
      return { key: await context.digest(found), open: ready(found.map(toItem(true)), context.filter) };
    }
    const context = new BuildContext(this.build.context.root, excludeFilter(this.build.context.filter, excludes));
    const { items, key } = await this.addSources(instruction, patterns, context);
    return { key, open: ready(items, context.filter) };
  }

  /**
   * COPY --from's items: read from the snapshots when they show the same as the overlay would (sourcesInLayers:
   * no `mount` and `umount` process then), else found in the stage's or image's root, mounted until `release`.
   */
  private async openFromSources(
    source: { layers: LayerRecord[]; key: string },
    patterns: string[],
    excludes: string[],
    instruction: Instruction,
  ): Promise<OpenedSources> {
    const { opaqueMarks } = this.build.services;
    const unmounted =
      excludes.length === 0
        ? await sourcesInLayers(new LayeredRoot(this.snapshotsTopFirst(source.layers), opaqueMarks), patterns)
        : undefined;
    if (unmounted) return { items: unmounted.map(toItem(false)), filter: contextFilter(''), release: async () => undefined };
    const root = await this.mountLayers(source);
    try {
      const { context, found } = await resolveExcluding(
        new BuildContext(root.root, contextFilter(''), 'confine'),
        patterns,
        excludes,
        instruction.line,
      );
      return { items: found.map(toItem(false)), filter: context.filter, release: root.release };
    } catch (error) {
      await root.release();
      throw error;
    }
  }

  /** ADD: URLs downloaded, local archives unpacked, anything else copied as COPY does. */
  private async addSources(
    instruction: Instruction,
    patterns: string[],
    context: BuildContext,
  ): Promise<{ items: CopyItem[]; key: string }> {
    const checksum = flagValue(instruction, 'checksum');
    if (checksum !== undefined && !patterns.every(isUrl))
      throw new DockerfileError(instruction.line, 'ADD --checksum is for URL sources only');
    const items: CopyItem[] = [];
    const keys: string[] = [];
    for (const pattern of patterns) {
      if (isUrl(pattern)) {
        const { item, digest } = await downloadSource(pattern, this.build.scratch('download'), checksum, instruction.line);
        items.push(item);
        keys.push(`${pattern} ${digest}`);
        continue;
      }
      const found = await context.resolve([pattern], instruction.line);
      keys.push(await context.digest(found));
      for (const source of found) {
        const compression = await archiveCompression(source, instruction.line);
        items.push(
          compression === undefined
            ? toItem(true)(source)
            : await unpackArchive(source, compression, this.build.scratch('archive'), instruction.line),
        );
      }
    }
    return { items, key: keys.join(' ') };
  }

  /** `COPY <<EOF /file`: each heredoc becomes a file named after its delimiter, expanded unless quoted. */
  private async heredocSources(
    instruction: Instruction,
    patterns: string[],
    variables: Map<string, string>,
  ): Promise<{ items: CopyItem[]; key: string }> {
    const directory = this.build.scratch('heredoc');
    await mkdir(directory, { recursive: true, mode: 0o755 });
    const items: CopyItem[] = [];
    for (const heredoc of instruction.heredocs) {
      if (!patterns.some((pattern) => pattern.replace(/^<<-?["']?/, '').replace(/["']$/, '') === heredoc.name)) continue;
      const file = path.join(directory, heredoc.name);
      const text = heredoc.expand ? expandHeredocBody(heredoc.content, variables, this.escapeCharacter, instruction.line) : heredoc.content;
      await writeFile(file, text, { mode: 0o644 });
      items.push({ hostPath: file, stats: await lstat(file), relative: undefined, keepOwners: false });
    }
    return { items, key: digestOf(JSON.stringify(instruction.heredocs)) };
  }

  /** The root `--mount=type=bind,from=` reads: an earlier stage's filesystem or an image's, as a read-only overlay. */
  private async sourceRoot(reference: string, instruction: Instruction): Promise<SourceRoot> {
    return this.mountLayers(await this.sourceLayers(reference, instruction));
  }

  /** The layers of the stage or image a `--from` names, and the key their content follows from. */
  private async sourceLayers(reference: string, instruction: Instruction): Promise<{ layers: LayerRecord[]; key: string }> {
    const stage = findStage(this.build.plan.stages, reference, this.stage.index);
    if (stage) {
      const result = await this.build.stageResult(stage.index);
      return { layers: result.layers, key: `stage ${result.key}` };
    }
    const record = await this.build
      .resolveImage(reference, () => undefined)
      .catch((error: Error) => {
        throw new DockerfileError(
          instruction.line,
          `${instruction.keyword} --from=${reference}: no stage or image of that name (${error.message})`,
        );
      });
    await this.build.lease.add(record.layers.flatMap((layer) => [layer.digest, layer.chainId]));
    return { layers: record.layers, key: `image ${record.configDigest}` };
  }

  /** The layers' snapshot directories, topmost first, as overlay's lowerdir and LayeredRoot take them. */
  private snapshotsTopFirst(layers: readonly LayerRecord[]): string[] {
    return [...layers].reverse().map((layer) => this.build.services.snapshots.filesPath(layer.chainId));
  }

  private async mountLayers({ layers, key }: { layers: LayerRecord[]; key: string }): Promise<SourceRoot> {
    if (layers.length === 0) return { root: this.build.emptyDirectory(), key, release: async () => undefined };
    const root = this.build.scratch('from');
    await mkdir(root, { recursive: true, mode: 0o700 });
    const lowers = this.snapshotsTopFirst(layers);
    await mountFilesystem('overlay', root, `ro,lowerdir=${[...lowers, this.build.emptyDirectory()].join(':')}`);
    return { root, key, release: () => unmountFilesystem(root) };
  }

  /**
   * A step that changes files: a cache hit reuses its layer without running anything; otherwise the action
   * runs on an overlay of the stage's snapshots (prepared, not mounted: a RUN's runtime mounts it, a COPY or
   * WORKDIR writes straight into its upper directory) and the upper directory becomes the layer (none if
   * empty). Only a RUN's (`kind`) can hold opaque directories: its process may remove a directory and make it
   * again through the overlay.
   */
  private async filesystemStep(
    instruction: Instruction,
    createdBy: string,
    keyParts: unknown,
    kind: 'run' | 'files',
    action: (overlay: OverlayDirectories, stepDirectory: string, progressId: number) => Promise<void>,
  ): Promise<void> {
    this.step++;
    const { progress, services } = this.build;
    const id = progress.begin(this.stepName(instruction));
    const key = digestOf(JSON.stringify([this.key, instruction.keyword, createdBy, keyParts]));
    try {
      const cached = await this.build.lookupCache(key);
      if (cached && (await this.ensureSnapshot(cached))) {
        this.apply(key, cached, createdBy);
        progress.cached(id);
        progress.done(id);
        return;
      }
      const stepDirectory = this.build.scratch('step');
      const lowers = this.layers.length > 0 ? this.snapshotsTopFirst(this.layers) : [this.build.emptyDirectory()];
      const overlay = await prepareOverlay(stepDirectory, lowers);
      await action(overlay, stepDirectory, id);
      const entry = { layer: await this.commitLayer(overlay.upper, stepDirectory, kind === 'run'), created: new Date().toISOString() };
      await services.cache.put(key, entry);
      this.apply(key, entry, createdBy);
      progress.done(id);
    } catch (error) {
      progress.failed(id, (error as Error).message);
      throw error;
    }
  }

  /** The upper directory as a layer blob and, moved into place, the snapshot for the next steps. */
  private async commitLayer(upper: string, stepDirectory: string, findOpaque: boolean): Promise<CachedLayer | null> {
    if (await isEmptyDirectory(upper)) return null;
    const { content, snapshots } = this.build.services;
    const written = await writeLayer(upper, content, {
      sourceDateEpoch: this.build.request.sourceDateEpoch,
      scratchFile: `${stepDirectory}.tar.gz`,
      findOpaque,
    });
    const { digest, size, mediaType, diffId, uncompressedSize } = written;
    const chainId = this.chainIdWith(diffId);
    await this.build.lease.add([digest, chainId]);
    await snapshots.create({ chainId, diffId, parent: this.layers.at(-1)?.chainId }, movedUpperFill(upper, written));
    // Later steps look paths up through this layer: which of its directories are opaque is known already.
    const files = snapshots.filesPath(chainId);
    const opaque = new Set(written.tree.opaque);
    for (const relative of written.tree.directories)
      this.build.services.opaqueMarks.learn(path.join(files, relative), opaque.has(relative));
    return { digest, size, mediaType, diffId, uncompressedSize };
  }

  /** A cached layer's snapshot exists, or is unpacked again from the content store. */
  private async ensureSnapshot(entry: CacheEntry): Promise<boolean> {
    if (!entry.layer) return true;
    const layer = entry.layer;
    const { snapshots, content } = this.build.services;
    const chainId = this.chainIdWith(layer.diffId);
    await this.build.lease.add([layer.digest, chainId]);
    if (await snapshots.info(chainId)) return true;
    if (!(await content.has(layer.digest))) return false;
    await snapshots.create({ chainId, diffId: layer.diffId, parent: this.layers.at(-1)?.chainId }, (directory, files) =>
      unpackLayer(
        { blob: content.read(layer.digest), digest: layer.digest, mediaType: layer.mediaType, diffId: layer.diffId },
        directory,
        { keepSetid: true, preserveOwnership: process.getuid?.() === 0, warn: () => undefined },
        files,
      ),
    );
    return true;
  }

  private chainIdWith(diffId: string): string {
    return chainIds([...this.layers.map((layer) => layer.diffId), diffId]).at(-1) as string;
  }

  private apply(key: string, cached: CacheEntry, createdBy: string): void {
    this.key = key;
    this.build.remember(key, cached);
    const { layer } = cached;
    const created = this.build.request.sourceDateEpoch === undefined ? cached.created : this.build.createdAt;
    const entry = { created, created_by: createdBy, comment: 'buildkit.dockerfile.v0' };
    if (!layer) {
      this.config.history.push({ ...entry, empty_layer: true });
      return;
    }
    this.layers.push({
      digest: layer.digest,
      size: layer.size,
      mediaType: layer.mediaType,
      diffId: layer.diffId,
      chainId: this.chainIdWith(layer.diffId),
    });
    this.config.rootfs.diff_ids.push(layer.diffId);
    this.config.history.push(entry);
  }
}

export class RunFailedError extends DockerfileError {
  constructor(
    line: number,
    detail: string,
    readonly exitCode: number,
  ) {
    super(line, detail);
  }
}

interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret';
  target: string | undefined;
  source: string | undefined;
  from: string | undefined;
  id: string | undefined;
  readOnly: boolean;
  required: boolean;
  mode: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  size: string | undefined;
  env: string | undefined;
}

const MOUNT_KEYS = new Set([
  'type',
  'target',
  'dst',
  'destination',
  'source',
  'src',
  'from',
  'id',
  'ro',
  'readonly',
  'rw',
  'readwrite',
  'required',
  'mode',
  'uid',
  'gid',
  'sharing',
  'size',
  'env',
]);

/** `--mount=type=secret,id=npm,target=/root/.npmrc` and the other forms BuildKit accepts. */
function parseMount(value: string, line: number): RunMount {
  const options = new Map<string, string>();
  for (const part of value.split(',').filter(Boolean)) {
    const equals = part.indexOf('=');
    const key = (equals === -1 ? part : part.slice(0, equals)).toLowerCase();
    if (!MOUNT_KEYS.has(key)) throw new DockerfileError(line, `unexpected key '${key}' in '--mount=${value}'`);
    options.set(key, equals === -1 ? 'true' : part.slice(equals + 1));
  }
  const type = options.get('type') ?? 'bind';
  if (type === 'ssh') throw new DockerfileError(line, 'RUN --mount=type=ssh is not supported');
  if (type !== 'bind' && type !== 'cache' && type !== 'tmpfs' && type !== 'secret')
    throw new DockerfileError(line, `unsupported mount type "${type}"`);
  const number = (key: string, radix: number) => {
    const text = options.get(key);
    if (text === undefined) return undefined;
    const parsed = Number.parseInt(text, radix);
    if (Number.isNaN(parsed)) throw new DockerfileError(line, `invalid ${key} "${text}" in --mount`);
    return parsed;
  };
  const truthy = (key: string) => options.has(key) && options.get(key) !== 'false';
  return {
    type,
    target: options.get('target') ?? options.get('dst') ?? options.get('destination'),
    source: options.get('source') ?? options.get('src'),
    from: options.get('from'),
    id: options.get('id'),
    readOnly: type === 'bind' ? !(truthy('rw') || truthy('readwrite')) : truthy('ro') || truthy('readonly'),
    required: truthy('required'),
    mode: number('mode', 8),
    uid: number('uid', 10),
    gid: number('gid', 10),
    size: options.get('size'),
    env: options.get('env'),
  };
}

function requireTarget(mount: RunMount, instruction: Instruction): string {
  if (!mount.target) throw new DockerfileError(instruction.line, `--mount=type=${mount.type} needs a target`);
  return mount.target;
}

/**
 * The RUN's argv: the JSON form as it is; the shell form through the image's SHELL; a RUN that is only a
 * heredoc runs its body as the script, and one that feeds a heredoc to a command gets it as the shell sees it.
 */
function runArgs(instruction: Instruction, shell: string[] | undefined): string[] {
  const [first] = instruction.heredocs;
  if (!first) return commandOf(instruction, shell);
  const script = /^<<-?["']?[\w.-]+["']?$/.test(instruction.args.trim())
    ? first.content
    : [instruction.args, ...instruction.heredocs.flatMap((heredoc) => [heredoc.content.replace(/\n$/, ''), heredoc.name])].join('\n');
  return [...(shell ?? DEFAULT_SHELL), script];
}

function expandHeredocBody(body: string, variables: Map<string, string>, escapeCharacter: string, line: number): string {
  return body
    .split('\n')
    .map((text) => (text === '' ? '' : expandKeepingQuotes(text, variables, escapeCharacter, line)))
    .join('\n');
}

/** A heredoc body expands `$VAR` but keeps its quotes, as a shell's unquoted heredoc does. */
function expandKeepingQuotes(text: string, variables: Map<string, string>, escapeCharacter: string, line: number): string {
  return text.replace(/\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)/g, (reference) => expand(reference, variables, escapeCharacter, line));
}

function parseChmod(value: string, line: number): number {
  if (!/^[0-7]{3,4}$/.test(value)) throw new DockerfileError(line, `invalid --chmod=${value}: only octal modes are supported`);
  return Number.parseInt(value, 8);
}

/** --chown user[:group] against the stage's own /etc/passwd and /etc/group; numbers need neither. */
/** `subject` names what asked, for the error (`--chown=app`, `USER app`). */
async function resolveOwner(root: DirectRoot, spec: string, line: number, subject: string): Promise<{ uid: number; gid: number }> {
  const read = async (file: string) => {
    const found = await root.readablePath(file);
    return found === undefined ? undefined : readFile(found, 'utf8').catch(() => undefined);
  };
  try {
    const [userPart = '', groupPart] = spec.split(':');
    const resolved = resolveUserSpec(
      groupPart === undefined ? userPart : `${userPart}:${groupPart}`,
      await read('/etc/passwd'),
      await read('/etc/group'),
    );
    // A user alone takes its own primary group in --chown only when named; a bare uid means gid = uid (docker's rule).
    const gid = groupPart === undefined && /^\d+$/.test(userPart) ? resolved.uid : resolved.gid;
    return { uid: resolved.uid, gid };
  } catch (error) {
    if (error instanceof UserLookupError) throw new DockerfileError(line, `${subject}: ${error.message}`);
    throw error;
  }
}

/**
 * The sources a COPY names and the context to copy them with. BuildKit reads `--exclude` patterns relative to
 * each copied directory (`COPY --exclude=x.txt src /d` leaves out `src/x.txt`), so they are anchored under
 * every directory source too; the same context computes the cache key, so the key covers exactly what is copied.
 */
async function resolveExcluding(
  base: BuildContext,
  patterns: string[],
  excludes: readonly string[],
  line: number,
): Promise<{ context: BuildContext; found: ContextSource[] }> {
  const found = await new BuildContext(base.root, excludeFilter(base.filter, excludes), base.links).resolve(patterns, line);
  const anchored = found
    .filter((source) => source.stats.isDirectory() && source.relative !== '' && source.relative !== '.')
    .flatMap((source) => excludes.map((pattern) => `${source.relative}/${pattern}`));
  return { context: new BuildContext(base.root, excludeFilter(base.filter, [...excludes, ...anchored]), base.links), found };
}

function excludeFilter(base: ContextFilter, excludes: readonly string[]): ContextFilter {
  if (excludes.length === 0) return base;
  const exclude = contextFilter(excludes.join('\n'));
  return {
    ignores: (relative) => base.ignores(relative) || exclude.ignores(relative),
    hasExceptions: base.hasExceptions || exclude.hasExceptions,
  };
}

function toItem(fromContext: boolean): (source: ContextSource) => CopyItem {
  return (source) => ({
    hostPath: source.hostPath,
    stats: source.stats,
    relative: fromContext ? source.relative : undefined,
    keepOwners: false,
  });
}

function emptyConfig(platform: Platform): ConfigDocument {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    // BuildKit's empty image: the default PATH and `/` as the working directory.
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

/** A base image's config as the start of a stage's: its runtime fields and history kept, nothing else. */
function baseConfig(document: Partial<ConfigDocument>): ConfigDocument {
  return {
    architecture: document.architecture ?? 'amd64',
    os: document.os ?? 'linux',
    ...(document.variant ? { variant: document.variant } : {}),
    config: { ...(document.config ?? {}) },
    rootfs: { type: 'layers', diff_ids: [...(document.rootfs?.diff_ids ?? [])] },
    history: [...(document.history ?? [])],
  };
}

/**
 * BuildKit's history times: a step that made a layer (or found it cached) carries the time it first ran, a
 * metadata step the time of the step before it (the first dated one's, when none is before). The image is as
 * old as its last step, so a build that runs nothing writes the same config as the one that filled the cache.
 */
function datedHistory(history: readonly HistoryEntry[], fallback: string): HistoryEntry[] {
  let previous = history.find((entry) => entry.created !== UNDATED)?.created ?? fallback;
  return history.map((entry) => {
    if (entry.created !== UNDATED) previous = entry.created;
    return { ...entry, created: previous };
  });
}

/** Where the kernel lists the emulators it runs foreign binaries with (qemu-user-static registers `qemu-<arch>`). */
const BINFMT_DIRECTORY = '/proc/sys/fs/binfmt_misc';

/**
 * `--platform`: a platform this host runs natively is built as usual; any other is refused before anything
 * runs, saying whether an emulator is there (this builder does not cross-build even then: its pulls and RUN
 * steps are for the host's platform only).
 */
function checkBuildPlatform(wanted: Platform, own: Platform): void {
  if (platformRank(wanted, own) !== undefined) return;
  const emulator = existsSync(path.join(BINFMT_DIRECTORY, `qemu-${QEMU_ARCHITECTURES[wanted.architecture] ?? wanted.architecture}`));
  const why = emulator
    ? 'cross-platform builds are not supported, even with the qemu emulator registered here'
    : `this host cannot run ${wanted.architecture} binaries (no qemu emulator is registered in ${BINFMT_DIRECTORY})`;
  throw new Error(`--platform ${formatPlatform(wanted)}: this agent builds for ${formatPlatform(own)} only; ${why}`);
}

/** The architecture names of qemu's binfmt handlers, where they differ from Go's. */
const QEMU_ARCHITECTURES: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', '386': 'i386', ppc64le: 'ppc64le' };
