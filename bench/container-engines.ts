import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentDaemon } from '../test/helpers/agent-daemon.js';
import { DockerDaemon } from '../test/helpers/dockerd.js';
import { DockerWorkbench } from '../test/helpers/docker-workbench.js';
import { run } from '../test/helpers/exec.js';
import { PodmanEnvironment } from '../test/helpers/podman.js';
import type { BenchSession } from './session.js';
import type { CommandLine } from './timed-command.js';

/**
 * The engines compared: the Berth agent daemon (its own data directory, bridge and subnet), Debian's
 * dockerd in the mode that leaves the host's network alone, and podman (plus skopeo on podman's storage),
 * each with all its state in a temp directory of its own.
 */
export interface Engines {
  agent: AgentDaemon;
  dockerd: DockerDaemon;
  podman: PodmanEnvironment;
}

/** Starts the engines one by one, registering each one's teardown as soon as it runs. */
export async function startEngines(session: BenchSession): Promise<Engines> {
  const agent = await AgentDaemon.start();
  session.teardowns.push(() => agent.destroy());
  const dockerd = await DockerDaemon.start();
  session.teardowns.push(() => dockerd.stop());
  const podman = await PodmanEnvironment.create();
  session.teardowns.push(() => podman.destroy());
  return { agent, dockerd, podman };
}

/** What the report names: engine and runtime versions and docker's storage driver. */
export async function engineVersions({ dockerd, podman }: Engines): Promise<string> {
  const first = async (promise: Promise<{ stdout: string }>) => (await promise).stdout.trim().split('\n')[0] ?? '';
  const [docker, driver, podmanVersion, skopeo, runc] = await Promise.all([
    first(dockerd.docker(['version', '--format', '{{.Server.Version}}'])),
    first(dockerd.docker(['info', '--format', '{{.Driver}}'])),
    first(podman.podman(['--version'])),
    first(run('skopeo', ['--version'])),
    first(run('runc', ['--version'])),
  ]);
  return `dockerd ${docker} (${driver}), ${podmanVersion} (runc, overlay), ${skopeo}, ${runc}, node ${process.version} (agent)`;
}

/** docker import of a busybox rootfs, pushed to the registry as `reference`; docker keeps it locally. */
export async function pushBusyboxImage({ dockerd }: Engines, workDir: string, reference: string): Promise<void> {
  const docker = new DockerWorkbench(dockerd, workDir);
  await dockerd.docker(['tag', await docker.importBusybox('agent-bench'), reference]);
  await docker.push(reference);
}

/** Pulls `reference` into the agent and podman (docker has it from the build), untimed: the run figures start with the image present. */
export async function pullEverywhere({ agent, podman }: Engines, reference: string): Promise<void> {
  await agent.cli(['pull', reference]);
  await podman.podman(['pull', '--quiet', '--tls-verify=false', reference]);
}

/** Berth's figures are compared with docker's (the target) and, for context, with the others'. */
export type Role = 'berth' | 'docker' | 'other';

export interface RunSubject {
  name: string;
  role: Role;
  network: string;
  command: CommandLine;
  /** The daemon whose process tree does the run's work with the CLI, counted in its CPU time; none for podman. */
  daemonPid: number | undefined;
}

/**
 * `run --rm IMAGE echo hi` with each engine, all with `--network none`; the agent also in its default bridge
 * mode, and the agent of another build (`--compare-build`) when there is one.
 */
export function runSubjects({ agent, dockerd, podman }: Engines, image: string, other: OtherBuildAgent | undefined): RunSubject[] {
  const none = ['run', '--rm', '--network', 'none', image, 'echo', 'hi'];
  const compared: RunSubject[] = other
    ? [
        {
          name: `Berth agent (${other.build})`,
          role: 'other',
          network: 'none',
          command: other.agent.cliCommand(none),
          daemonPid: other.agent.pid,
        },
      ]
    : [];
  return [
    { name: 'Berth agent', role: 'berth', network: 'none', command: agent.cliCommand(none), daemonPid: agent.pid },
    ...compared,
    {
      name: 'docker',
      role: 'docker',
      network: 'none',
      command: { file: 'docker', args: none, env: dockerd.cliEnv },
      daemonPid: dockerd.pid,
    },
    { name: 'podman', role: 'other', network: 'none', command: { file: 'podman', args: none, env: podman.env }, daemonPid: undefined },
    {
      name: 'Berth agent, bridge',
      role: 'other',
      network: 'bridge (default)',
      command: agent.cliCommand(['run', '--rm', image, 'echo', 'hi']),
      daemonPid: agent.pid,
    },
  ];
}

/** The agent of another build's dist directory, beside this build's. */
export interface OtherBuildAgent {
  build: string;
  agent: AgentDaemon;
}

export interface PullSubject {
  name: string;
  role: Role;
  pull: CommandLine;
  /** The daemon that does the pull's work for the CLI, whose CPU time counts with the CLI's; none for skopeo. */
  daemonPid: number | undefined;
  /** Removes everything the pull stored, so that the next pull downloads and unpacks every layer again. */
  remove(): Promise<void>;
}

/** A pull of `image` with each engine, plus skopeo into an OCI layout (no unpacking) and into podman's storage. */
export function pullSubjects(
  { agent, dockerd, podman }: Engines,
  image: { reference: string; layerDigests: string[] },
  workDir: string,
): PullSubject[] {
  const { reference } = image;
  const layout = path.join(workDir, 'skopeo-layout');
  const skopeo = (destination: string): string[] => ['copy', '--src-tls-verify=false', `docker://${reference}`, destination];
  return [
    agentPullSubject(agent, 'Berth agent pull', 'berth', image),
    {
      name: 'docker pull',
      role: 'docker',
      pull: { file: 'docker', args: ['pull', reference], env: dockerd.cliEnv },
      daemonPid: dockerd.pid,
      remove: () => new DockerWorkbench(dockerd, workDir).removeLocally(reference),
    },
    {
      name: 'skopeo copy to oci: (no unpack)',
      role: 'other',
      pull: { file: 'skopeo', args: skopeo(`oci:${layout}:bench`) },
      daemonPid: undefined,
      remove: () => rm(layout, { recursive: true, force: true }),
    },
    {
      name: 'skopeo copy to containers-storage:',
      role: 'other',
      pull: { file: 'skopeo', args: skopeo(`containers-storage:${reference}`), env: podman.env },
      daemonPid: undefined,
      remove: async () => void (await podman.podman(['rmi', reference])),
    },
  ];
}

/** A pull with an agent daemon; `role` other for a second agent (another build's) pulling beside it. */
export function agentPullSubject(
  agent: AgentDaemon,
  name: string,
  role: Role,
  image: { reference: string; layerDigests: string[] },
): PullSubject {
  const { reference } = image;
  return {
    name,
    role,
    pull: agent.cliCommand(['pull', reference]),
    daemonPid: agent.pid,
    remove: async () => {
      await agent.cli(['rmi', reference]);
      await agent.cli(['prune']);
      const left = (await agent.blobs()).filter((digest) => image.layerDigests.includes(digest));
      if (left.length > 0) throw new Error(`the agent still stores layers after rmi and prune: ${left.join(', ')}`);
    },
  };
}

/**
 * The agent daemon of another build of this repository (its `dist` directory, e.g. a copy of main's), to pull
 * side by side with this build's in one run.
 */
export async function startAgentOfBuild(session: BenchSession, distDirectory: string, args: string[] = []): Promise<AgentDaemon> {
  const agent = await (await agentOfBuild(distDirectory)).start(args);
  session.teardowns.push(() => agent.destroy());
  return agent;
}

/** The test helper that starts the agent daemon of another build of this repository (its `dist` directory). */
export async function agentOfBuild(distDirectory: string): Promise<typeof AgentDaemon> {
  const helper = pathToFileURL(path.resolve(distDirectory, 'test/helpers/agent-daemon.js')).href;
  return ((await import(helper)) as { AgentDaemon: typeof AgentDaemon }).AgentDaemon;
}
