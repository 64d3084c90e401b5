import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Duplex, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import type { RunRequest, VolumeSummary } from '../api.js';
import type { ContentStore } from '../content/content-store.js';
import { AgentErrors } from '../errors.js';
import { findImage } from '../image/image-lookup.js';
import type { ImageStore } from '../image/image-store.js';
import { parseImageConfig } from '../image/manifest.js';
import type { ContainerNetwork } from '../network/container-network.js';
import { StartError, type ContainerRuntime, type ExecProcess, type RunningContainer } from '../runtime/container-runtime.js';
import type { ExitRecord } from '../shim/shim-protocol.js';
import { DEFAULT_TERMINAL_SIZE, type PtyProcess } from '../runtime/pty-process.js';
import type { TerminalSize } from './attach/terminal-frames.js';
import type { ContainerFilesystem } from './container-filesystem.js';
import { LOG_DIRECTORY, type ContainerLauncher } from './container-launcher.js';
import { generateName } from './container-names.js';
import type { ContainerObserver } from './container-observer.js';
import type { PortMapping } from './container-spec.js';
import { mergeHealthcheck } from './health/health-config.js';
import type { ContainerRecord } from './container-record.js';
import type { ContainerStore } from './container-store.js';
import type { VolumeStore } from '../volumes/volume-store.js';
import { decideRestart, shouldStartAtBoot, type RestartBackoff } from './restart-backoff.js';
import { resolveArgs } from '../spec/oci-spec.js';
import { parseName, parseRunRequest, parseSignal } from './run-options.js';
import { RootfsDir, unmountRootfs } from '../spec/rootfs.js';
import { resolveUser } from '../spec/user-lookup.js';

export interface ExecRequestOptions {
  command: string[];
  env: string[];
  user: string | undefined;
  workdir: string | undefined;
}

export interface ContainerManagerDependencies {
  store: ContainerStore;
  launcher: ContainerLauncher;
  runtime: ContainerRuntime;
  network: ContainerNetwork;
  volumes: VolumeStore;
  images: ImageStore;
  content: ContentStore;
  backoff: RestartBackoff;
  /** Told of each step of a container's life: events and health checks. */
  observer: ContainerObserver;
  logger: Logger;
}

/** A container's processes frozen for the copies in it (`cp`); `settled` is the last freeze or thaw. */
interface CopyFreeze {
  copies: number;
  frozen: boolean;
  settled: Promise<void>;
}

/**
 * The containers' lifecycle: create, start, stop, kill, remove, the exits of their runs and the restarts
 * their policies ask for. Records live in memory and are saved on every change; each run is owned by a
 * shim, so containers keep running while the daemon is down and `recover` finds them again.
 */
export class ContainerManager {
  private readonly records = new Map<string, ContainerRecord>();
  private readonly runs = new Map<string, RunningContainer>();
  /** Settles once the current run's exit has been recorded (and a restart scheduled, if any). */
  private readonly exitHandled = new Map<string, Promise<void>>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private readonly removing = new Set<string>();
  private readonly starting = new Set<string>();
  /** The containers `withFilesFrozen` froze for copies. */
  private readonly copyFreezes = new Map<string, CopyFreeze>();
  /** Readings of a run's log by attached starts: a `--rm` container is removed once they have ended. */
  private readonly outputReadings = new Map<string, Set<Promise<unknown>>>();

  constructor(private readonly deps: ContainerManagerDependencies) {}

  /** At daemon start: re-attaches to runs that outlived the previous daemon and restarts what policies want up. */
  async recover(): Promise<void> {
    for (const record of await this.deps.store.list()) this.records.set(record.id, record);
    for (const record of this.records.values()) {
      const wasUp = record.state.status === 'running' || record.state.status === 'restarting';
      // A daemon that died while starting a container may have left its root mounted.
      if (!wasUp) await unmountRootfs(this.directory(record.id));
      const startNow = wasUp ? await this.reattachOrSettle(record) : alwaysStoppedByUser(record);
      // A `--rm` run that ended while the daemon was down (or before its removal was done) goes, as docker's does.
      if (record.autoRemove && !startNow && !this.runs.has(record.id)) await this.remove(record.id, false);
      if (!startNow) continue;
      record.state.stoppedByUser = false;
      await this.startRun(record).catch((error: Error) =>
        this.deps.logger.warn({ container: record.id, err: error }, 'start at boot failed'),
      );
    }
    await this.deps.network.removeLeftovers(new Set([...this.runs.keys()]));
  }

  /** Watches a run that is still going, or records how it ended; true when the policy wants it started again. */
  private async reattachOrSettle(record: ContainerRecord): Promise<boolean> {
    const found = await this.deps.runtime.reattach(this.directory(record.id), record.state.shimPid ?? 0);
    if ('pid' in found) {
      this.watch(record, found);
      this.deps.observer.started(record, true);
      this.deps.logger.info({ container: record.id, pid: found.pid }, 're-attached to a running container');
      return false;
    }
    await this.deps.runtime.delete(record.id).catch(() => undefined);
    await this.deps.launcher.release(record, this.directory(record.id)).catch(() => undefined);
    this.markExited(record, found);
    await this.deps.observer.exited(record, found);
    await this.save(record);
    return shouldStartAtBoot(record.spec.restart, { exitCode: found.exitCode, stoppedByUser: record.state.stoppedByUser });
  }

  list(all: boolean): ContainerRecord[] {
    const records = [...this.records.values()].filter(
      (record) => all || record.state.status === 'running' || record.state.status === 'restarting',
    );
    return records.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** Named volumes, each with the names of the containers that mount it. */
  async volumes(): Promise<VolumeSummary[]> {
    const users = this.volumeUsers();
    return (await this.deps.volumes.list()).map((name) => this.volumeSummary(name, users));
  }

  async createVolume(name: string): Promise<VolumeSummary> {
    await this.deps.volumes.create(name);
    return this.volumeSummary(name, this.volumeUsers());
  }

  /** Removes a volume no container mounts (docker refuses one in use, even with -f). */
  async removeVolume(name: string): Promise<void> {
    if (!(await this.deps.volumes.list()).includes(name)) throw new CodedError(AgentErrors.VOLUME_UNKNOWN, `get ${name}: no such volume`);
    const usedBy = this.volumeUsers().get(name) ?? [];
    if (usedBy.length > 0) throw new CodedError(AgentErrors.VOLUME_IN_USE, `remove ${name}: volume is in use - [${usedBy.join(', ')}]`);
    await this.deps.volumes.remove(name);
  }

  /** Volume name -> names of the containers that mount it. */
  private volumeUsers(): Map<string, string[]> {
    const users = new Map<string, string[]>();
    for (const record of this.records.values()) {
      for (const mount of record.spec.mounts)
        if (mount.type === 'volume') users.set(mount.name, [...(users.get(mount.name) ?? []), record.name]);
    }
    return users;
  }

  private volumeSummary(name: string, users: Map<string, string[]>): VolumeSummary {
    return { name, mountpoint: this.deps.volumes.directory(name), usedBy: users.get(name) ?? [] };
  }

  /** Removes every volume no container mounts; returns their names. */
  async pruneVolumes(): Promise<string[]> {
    const unused = (await this.volumes()).filter((volume) => volume.usedBy.length === 0).map((volume) => volume.name);
    for (const name of unused) await this.deps.volumes.remove(name);
    return unused;
  }

  /** Layers (chain ids) containers use: kept by image garbage collection even after `rmi`. */
  usedLayers(): Set<string> {
    return new Set([...this.records.values()].flatMap((record) => record.layers));
  }

  get(idOrName: string): ContainerRecord {
    const exact = this.records.get(idOrName) ?? [...this.records.values()].find((record) => record.name === idOrName.replace(/^\//, ''));
    if (exact) return exact;
    const byPrefix = [...this.records.values()].filter((record) => record.id.startsWith(idOrName));
    if (byPrefix.length === 1 && byPrefix[0]) return byPrefix[0];
    if (byPrefix.length > 1) throw new CodedError(AgentErrors.CONTAINER_AMBIGUOUS, `multiple containers match ${idOrName}`);
    throw new CodedError(AgentErrors.CONTAINER_UNKNOWN, `No such container: ${idOrName}`);
  }

  async create(request: RunRequest, autoRemove: boolean): Promise<ContainerRecord> {
    const spec = parseRunRequest(request);
    // A container removed when its run ends has nothing to restart (docker refuses the pair the same way).
    if (autoRemove && spec.restart.name !== 'no')
      throw new CodedError(AgentErrors.RUN_OPTIONS_INVALID, 'Conflicting options: --restart and --rm');
    const image = await findImage(request.image, this.deps.images);
    const name = spec.name ?? generateName((candidate) => this.nameTaken(candidate) !== undefined);
    const holder = this.nameTaken(name);
    if (holder)
      throw new CodedError(
        AgentErrors.NAME_IN_USE,
        `Conflict. The container name "/${name}" is already in use by container "${holder.id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    const config = parseImageConfig(await this.deps.content.readSmall(image.configDigest), image.layers.length).config ?? {};
    const args = resolveArgs(spec, config);
    const record: ContainerRecord = {
      id: randomBytes(32).toString('hex'),
      name,
      spec: { ...spec, name },
      imageReference: image.reference,
      imageId: image.configDigest,
      layers: image.layers.map((layer) => layer.chainId),
      imageConfig: config,
      stopSignal: spec.stopSignal ?? (config.StopSignal ? parseSignal(config.StopSignal) : 'SIGTERM'),
      path: args[0] ?? '',
      args: args.slice(1),
      autoRemove,
      createdAt: new Date().toISOString(),
      state: {
        status: 'created',
        pid: undefined,
        shimPid: undefined,
        startedAt: undefined,
        finishedAt: undefined,
        exitCode: undefined,
        error: undefined,
        oomKilled: false,
        restartCount: 0,
        lastRestartDelayMs: undefined,
        stoppedByUser: false,
        health: undefined,
        paused: false,
      },
      network: undefined,
      healthcheck: mergeHealthcheck(spec.healthcheck, config.Healthcheck),
    };
    this.records.set(record.id, record);
    await this.deps.store.create(record);
    this.deps.observer.created(record);
    return record;
  }

  async start(idOrName: string): Promise<ContainerRecord> {
    const record = this.get(idOrName);
    if (this.runs.has(record.id)) return record;
    this.cancelRestart(record);
    record.state.stoppedByUser = false;
    await this.startRun(record);
    return record;
  }

  /**
   * `run -t`, `start -a`: starts a `-t` container with a connection to its terminal made before its process
   * runs, so a command that ends at once still shows all its output and its exit code; a running one is
   * attached to as it is.
   */
  async startAttached(idOrName: string): Promise<Duplex> {
    const record = this.get(idOrName);
    this.checkTerminal(record);
    if (this.runs.has(record.id)) return this.terminal(record.id);
    this.cancelRestart(record);
    record.state.stoppedByUser = false;
    const terminal = (await this.startRun(record, true)).terminal;
    if (!terminal) throw new Error(`the terminal of container ${record.id} was not connected at its start`);
    return terminal;
  }

  /** Sends the stop signal, then SIGKILL after the timeout; resolves once the exit is recorded. */
  async stop(idOrName: string, timeoutSeconds?: number): Promise<ContainerRecord> {
    const record = this.get(idOrName);
    await this.markStoppedByUser(record);
    const run = this.runs.get(record.id);
    if (!run) return record;
    await this.thaw(record);
    this.deps.observer.killed(record, record.stopSignal);
    await this.deps.runtime.kill(record.id, record.stopSignal).catch(() => undefined);
    const timeoutMs = (timeoutSeconds ?? record.spec.stopTimeoutSeconds) * 1000;
    const exitedInTime = await Promise.race([run.exited.then(() => true), delay(timeoutMs, false, { ref: false })]);
    if (!exitedInTime) {
      this.deps.observer.killed(record, 'SIGKILL');
      await this.deps.runtime.kill(record.id, 'SIGKILL').catch(() => undefined);
    }
    await this.exitHandled.get(record.id);
    this.deps.observer.stopped(record);
    return record;
  }

  async kill(idOrName: string, signal: string): Promise<ContainerRecord> {
    const record = this.get(idOrName);
    if (!this.runs.has(record.id)) throw new CodedError(AgentErrors.CONTAINER_NOT_RUNNING, `Container ${record.id} is not running`);
    if (signal === 'SIGKILL' || signal === record.stopSignal) await this.markStoppedByUser(record);
    this.deps.observer.killed(record, signal);
    await this.deps.runtime.kill(record.id, signal);
    return record;
  }

  async remove(idOrName: string, force: boolean): Promise<ContainerRecord> {
    const record = this.get(idOrName);
    this.removing.add(record.id);
    try {
      await this.removeContainer(record, force);
    } finally {
      this.removing.delete(record.id);
    }
    return record;
  }

  private async removeContainer(record: ContainerRecord, force: boolean): Promise<void> {
    if (this.runs.has(record.id)) {
      if (!force)
        throw new CodedError(
          AgentErrors.CONTAINER_RUNNING,
          `You cannot remove a running container ${record.id}. Stop the container before attempting removal or force remove`,
        );
      await this.markStoppedByUser(record);
      await this.thaw(record);
      this.deps.observer.killed(record, 'SIGKILL');
      await this.deps.runtime.kill(record.id, 'SIGKILL').catch(() => undefined);
      await this.exitHandled.get(record.id);
    }
    this.cancelRestart(record);
    await this.deps.launcher.release(record, this.directory(record.id));
    await this.deps.runtime.delete(record.id);
    this.records.delete(record.id);
    await this.deps.store.remove(record.id);
    this.deps.observer.destroyed(record);
  }

  /**
   * Runs `read` (an attached start: the start, then the reading of its output) with the container's removal
   * on exit held until `read` has ended: a `--rm` run's last output is still in its log when it is read.
   */
  async whileReadingOutput<T>(idOrName: string, read: () => Promise<T>): Promise<T> {
    const { id } = this.get(idOrName);
    const reading = read();
    const readings = this.outputReadings.get(id) ?? new Set<Promise<unknown>>();
    this.outputReadings.set(id, readings.add(reading));
    try {
      return await reading;
    } finally {
      readings.delete(reading);
      if (readings.size === 0) this.outputReadings.delete(id);
    }
  }

  /** The exit code of the current run once it ends, or of the last one if none runs. */
  async wait(idOrName: string): Promise<number> {
    const record = this.get(idOrName);
    await this.exitHandled.get(record.id);
    return record.state.exitCode ?? 0;
  }

  /** Settles when the current run ends (at once when none runs): where `logs -f` stops. */
  runEnded(idOrName: string): Promise<void> {
    const run = this.runs.get(this.get(idOrName).id);
    return run ? run.exited.then(() => undefined) : Promise.resolve();
  }

  /** The container's state directory (its writable layer is `diff` in it): what `system df` measures. */
  directoryOf(idOrName: string): string {
    return this.directory(this.get(idOrName).id);
  }

  logDirectory(idOrName: string): string {
    return path.join(this.directory(this.get(idOrName).id), LOG_DIRECTORY);
  }

  /** The running container's stdin, for the one client that attaches it (`run -i`). */
  async stdin(idOrName: string): Promise<Writable> {
    const record = this.get(idOrName);
    const run = this.runs.get(record.id);
    if (!run) throw new CodedError(AgentErrors.CONTAINER_NOT_RUNNING, `Container ${record.id} is not running`);
    if (!record.spec.openStdin) throw new CodedError(AgentErrors.STDIN_CLOSED, `Container ${record.id} has no open stdin: run it with -i`);
    if (record.spec.tty === true)
      throw new CodedError(AgentErrors.STDIN_CLOSED, `Container ${record.id} runs on a terminal: its input goes through attach`);
    return this.deps.runtime.openStdin(this.directory(record.id), run.shimPid);
  }

  async exec(idOrName: string, request: ExecRequestOptions) {
    const record = this.get(idOrName);
    return this.deps.runtime.exec(record.id, await this.execProcess(record, request));
  }

  /** `exec -t`: the process on a terminal of its own, TERM=xterm unless the request sets TERM. */
  async execOnTerminal(idOrName: string, request: ExecRequestOptions, size: TerminalSize): Promise<PtyProcess> {
    const record = this.get(idOrName);
    const env = request.env.some((entry) => entry.split('=', 1)[0] === 'TERM') ? request.env : ['TERM=xterm', ...request.env];
    return this.deps.runtime.execOnTerminal(record.id, await this.execProcess(record, { ...request, env }), size);
  }

  private async execProcess(record: ContainerRecord, request: ExecRequestOptions): Promise<ExecProcess> {
    if (!this.runs.has(record.id)) throw new CodedError(AgentErrors.CONTAINER_NOT_RUNNING, `Container ${record.id} is not running`);
    const user = request.user ? await resolveUser(path.join(this.directory(record.id), RootfsDir.mount), request.user) : undefined;
    return { args: request.command, env: request.env, cwd: request.workdir, user };
  }

  /** A new client connection to a running `-t` container's terminal (terminal-frames.ts). */
  async terminal(idOrName: string): Promise<Duplex> {
    const record = this.get(idOrName);
    const run = this.runs.get(record.id);
    if (!run) throw new CodedError(AgentErrors.CONTAINER_NOT_RUNNING, `You cannot attach to a stopped container, start it first`);
    this.checkTerminal(record);
    return this.deps.runtime.openTerminal(this.directory(record.id), run.shimPid);
  }

  private checkTerminal(record: ContainerRecord): void {
    if (record.spec.tty !== true)
      throw new CodedError(AgentErrors.TERMINAL_ABSENT, `Container ${record.id} has no terminal: attach works with containers run with -t`);
  }

  /**
   * A start-first update of a container publishing host ports: `to` (running, created without ports) takes
   * the ports `from` publishes, or `ports` when `from` publishes none; `from` keeps running without them.
   */
  async movePorts(fromId: string | undefined, toIdOrName: string, ports: PortMapping[]): Promise<ContainerRecord> {
    const from = fromId === undefined ? undefined : this.records.get(fromId);
    const to = this.get(toIdOrName);
    if (!this.runs.has(to.id) || !to.network) throw new CodedError(AgentErrors.CONTAINER_NOT_RUNNING, `Container ${to.id} is not running`);
    const published = await this.deps.network.movePorts(from && this.runs.has(from.id) ? from.id : undefined, to.id, ports);
    to.spec.ports = ports;
    to.network = { ...to.network, ports: published };
    await this.save(to);
    if (from) {
      from.spec.ports = [];
      if (from.network) from.network = { ...from.network, ports: [] };
      await this.save(from);
    }
    return to;
  }

  /** docker rename: the new name follows the rules and uniqueness of `--name`. */
  async rename(idOrName: string, newName: string): Promise<ContainerRecord> {
    const record = this.get(idOrName);
    const name = parseName(newName);
    if (name === undefined) throw new CodedError(AgentErrors.REQUEST_INVALID, 'Neither old nor new names may be empty');
    const holder = this.nameTaken(name);
    if (holder && holder.id !== record.id)
      throw new CodedError(
        AgentErrors.NAME_IN_USE,
        `Error when allocating new name: Conflict. The container name "/${name}" is already in use by container "${holder.id}".`,
      );
    record.name = name;
    record.spec.name = name;
    await this.save(record);
    return record;
  }

  /**
   * `cp`: the running container's files (root, volumes and bind mounts) and `work` done on them while its
   * processes are frozen, so none of them can swap a symlink into a path between its resolution and its use
   * (CVE-2018-15664). A container the user paused stays paused; copies at once share one freeze.
   */
  async withFilesFrozen<T>(idOrName: string, work: (files: ContainerFilesystem) => Promise<T>): Promise<T> {
    const record = this.get(idOrName);
    if (!this.runs.has(record.id))
      throw new CodedError(AgentErrors.CONTAINER_NOT_RUNNING, `Container ${record.id} is not running: cp needs a running container`);
    const files = this.deps.launcher.filesystem(record, this.directory(record.id));
    const freeze = this.copyFreezes.get(record.id) ?? { copies: 0, frozen: false, settled: Promise.resolve() };
    this.copyFreezes.set(record.id, freeze);
    freeze.copies++;
    try {
      await this.settleFreeze(record, freeze);
      return await work(files);
    } finally {
      freeze.copies--;
      await this.settleFreeze(record, freeze).catch(() => undefined);
    }
  }

  /** Freezes or thaws for copies, one change at a time: a copy that starts as another ends must not race its thaw. */
  private settleFreeze(record: ContainerRecord, freeze: CopyFreeze): Promise<void> {
    const settle = async () => {
      if (freeze.copies > 0 && !freeze.frozen) {
        if (!record.state.paused) await this.deps.runtime.pause(record.id);
        freeze.frozen = true;
      } else if (freeze.copies === 0 && freeze.frozen) {
        freeze.frozen = false;
        if (!record.state.paused && this.runs.has(record.id)) await this.deps.runtime.resume(record.id);
      }
      if (freeze.copies === 0 && !freeze.frozen) this.copyFreezes.delete(record.id);
    };
    freeze.settled = freeze.settled.catch(() => undefined).then(settle);
    return freeze.settled;
  }

  /** docker pause: freezes the container's processes (runc pause, the cgroup freezer). */
  async pause(idOrName: string): Promise<ContainerRecord> {
    const record = this.get(idOrName);
    if (!this.runs.has(record.id)) throw new CodedError(AgentErrors.CONTAINER_NOT_RUNNING, `Container ${record.id} is not running`);
    if (record.state.paused) throw new CodedError(AgentErrors.CONTAINER_PAUSED, `Container ${record.id} is already paused`);
    // Frozen for a copy already: it stays frozen when the copy ends.
    if (!this.copyFreezes.has(record.id)) await this.deps.runtime.pause(record.id);
    record.state.paused = true;
    await this.save(record);
    return record;
  }

  async unpause(idOrName: string): Promise<ContainerRecord> {
    const record = this.get(idOrName);
    if (!record.state.paused) throw new CodedError(AgentErrors.CONTAINER_NOT_PAUSED, `Container ${record.id} is not paused`);
    await this.thaw(record);
    return record;
  }

  /** A frozen container takes no signal until thawed: stop and rm -f thaw it first, as docker does. */
  private async thaw(record: ContainerRecord): Promise<void> {
    if (!record.state.paused) return;
    // Frozen for a copy too: the copy thaws it when it ends.
    if (!this.copyFreezes.has(record.id)) await this.deps.runtime.resume(record.id);
    record.state.paused = false;
    await this.save(record);
  }

  private async startRun(record: ContainerRecord, attachTerminal = false): Promise<RunningContainer> {
    if (this.starting.has(record.id)) throw new CodedError(AgentErrors.CONTAINER_STARTING, `Container ${record.id} is already starting`);
    this.starting.add(record.id);
    try {
      return await this.launch(record, attachTerminal);
    } finally {
      this.starting.delete(record.id);
    }
  }

  private async launch(record: ContainerRecord, attachTerminal: boolean): Promise<RunningContainer> {
    const directory = this.directory(record.id);
    try {
      record.network = await this.deps.launcher.prepare(record, directory, record.imageConfig);
      const run = await this.deps.runtime.start(record.id, directory, path.join(directory, LOG_DIRECTORY), {
        openStdin: record.spec.openStdin === true,
        tty: record.spec.tty === true,
        consoleSize: record.spec.consoleSize ?? DEFAULT_TERMINAL_SIZE,
        attachTerminal,
        watchOutOfMemory: record.spec.limits.memoryBytes !== undefined,
        removedAfterRun: record.autoRemove,
      });
      Object.assign(record.state, {
        status: 'running',
        pid: run.pid,
        shimPid: run.shimPid,
        startedAt: new Date().toISOString(),
        finishedAt: undefined,
        exitCode: undefined,
        error: undefined,
        oomKilled: false,
      });
      await this.save(record);
      this.watch(record, run);
      this.deps.observer.started(record, false);
      return run;
    } catch (error) {
      await this.deps.launcher.release(record, directory).catch(() => undefined);
      const exitCode = error instanceof StartError ? error.exitCode : 125;
      this.markExited(record, { exitCode, finishedAt: new Date().toISOString(), startError: (error as Error).message });
      await this.save(record);
      throw error;
    }
  }

  private watch(record: ContainerRecord, run: RunningContainer): void {
    this.runs.set(record.id, run);
    this.exitHandled.set(
      record.id,
      run.exited
        .then((exit) => this.onExit(record, exit))
        .catch((error: unknown) => {
          this.deps.logger.error({ err: error, container: record.id }, 'handling a container exit failed');
        }),
    );
  }

  private async onExit(record: ContainerRecord, exit: ExitRecord): Promise<void> {
    this.runs.delete(record.id);
    const upMs = Date.now() - Date.parse(record.state.startedAt ?? exit.finishedAt);
    this.markExited(record, exit);
    await this.deps.observer.exited(record, exit);
    await this.deps.runtime.delete(record.id).catch(() => undefined);
    await this.deps.launcher.release(record, this.directory(record.id));
    this.deps.logger.info({ container: record.id, exitCode: exit.exitCode }, 'container exited');
    if (!this.records.has(record.id)) return;
    const history = { restartCount: record.state.restartCount, lastDelayMs: record.state.lastRestartDelayMs };
    const decision = decideRestart(
      record.spec.restart,
      { exitCode: exit.exitCode, stoppedByUser: record.state.stoppedByUser, upTimeMs: upMs },
      history,
      this.deps.backoff,
    );
    if (decision.restart) {
      record.state.status = 'restarting';
      record.state.lastRestartDelayMs = decision.delayMs;
      this.scheduleRestart(record, decision.delayMs);
    }
    if (!decision.restart && record.autoRemove) await this.removeOnceRead(record);
    else await this.save(record);
  }

  /** docker's AutoRemove: the container goes once its run has ended and the attached starts have read its output. */
  private async removeOnceRead(record: ContainerRecord): Promise<void> {
    await Promise.allSettled(this.outputReadings.get(record.id) ?? []);
    if (this.records.has(record.id) && !this.removing.has(record.id)) await this.remove(record.id, false);
  }

  private scheduleRestart(record: ContainerRecord, delayMs: number): void {
    const timer = setTimeout(() => {
      this.restartTimers.delete(record.id);
      record.state.restartCount++;
      this.startRun(record).catch(async (error: Error) => {
        this.deps.logger.warn({ container: record.id, err: error }, 'restart failed');
        await this.onExit(record, {
          exitCode: record.state.exitCode ?? 125,
          finishedAt: new Date().toISOString(),
          startError: error.message,
        });
      });
    }, delayMs);
    this.restartTimers.set(record.id, timer);
  }

  private cancelRestart(record: ContainerRecord): void {
    const timer = this.restartTimers.get(record.id);
    if (timer) clearTimeout(timer);
    this.restartTimers.delete(record.id);
    if (record.state.status === 'restarting') record.state.status = 'exited';
  }

  private async markStoppedByUser(record: ContainerRecord): Promise<void> {
    record.state.stoppedByUser = true;
    this.cancelRestart(record);
    await this.save(record);
  }

  private markExited(record: ContainerRecord, exit: ExitRecord): void {
    Object.assign(record.state, {
      status: 'exited',
      pid: undefined,
      shimPid: undefined,
      exitCode: exit.exitCode,
      finishedAt: exit.finishedAt,
      error: exit.startError,
      oomKilled: exit.oomKilled === true,
      paused: false,
    });
    record.network = undefined;
  }

  private nameTaken(name: string): ContainerRecord | undefined {
    return [...this.records.values()].find((record) => record.name === name);
  }

  private save(record: ContainerRecord): Promise<void> {
    return this.records.has(record.id) ? this.deps.store.save(record) : Promise.resolve();
  }

  private directory(id: string): string {
    return this.deps.store.directory(id);
  }
}

/** docker's `always`: a container the user stopped stays down only until the daemon restarts. */
function alwaysStoppedByUser(record: ContainerRecord): boolean {
  return record.spec.restart.name === 'always' && record.state.status === 'exited' && record.state.stoppedByUser;
}
