import type { Command } from 'commander';
import { parseGoDuration } from '../../platform/go-duration.js';
import type { CreateRequest, LogLine, RunExit } from '../api.js';
import { printLogEntries } from '../container/logs/log-formatter.js';
import { AgentErrors } from '../errors.js';
import { AgentRequestError, type AgentClient } from './agent-client.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys, terminalSizeOf } from './terminal.js';
import { table } from './table.js';

/**
 * docker's container verbs: run, start, ps, logs, stop, kill, rm, exec, inspect. What only some of them use
 * (terminals, list formats) is imported by those: a plain `run` loads neither.
 */

const attachCommands = () => import('./attach-commands.js');
const formatRows = () => import('./format-rows.js');

type ClientOf = (command: Command) => AgentClient;

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface RunFlags {
  label?: string[];
  detach?: boolean;
  rm?: boolean;
  name?: string;
  env?: string[];
  volume?: string[];
  tmpfs?: string[];
  publish?: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  readOnly?: boolean;
  interactive?: boolean;
  tty?: boolean;
  network?: string;
  restart?: string;
  entrypoint?: string;
  user?: string;
  workdir?: string;
  hostname?: string;
  stopSignal?: string;
  stopTimeout?: string;
  securityOpt?: string[];
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  healthRetries?: string;
  healthcheck: boolean;
  detachKeys?: string;
}

export function addContainerCommands(program: Command, client: ClientOf): void {
  program
    .command('run')
    .description('create and start a container from an image (pulled first if missing)')
    .argument('<image>')
    .argument('[command...]', "replaces the image's Cmd")
    .passThroughOptions()
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--rm', 'remove the container when it exits')
    .option('-i, --interactive', "keep stdin open; an attached run sends this terminal's stdin to it")
    .option('-t, --tty', 'run the process on a pseudo-terminal (with -i, this terminal is attached to it)')
    .option('--detach-keys <keys>', `keys that detach from the container's terminal (default ${DEFAULT_DETACH_KEYS})`)
    .option('--name <name>', 'container name')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (KEY alone takes it from here)', collect)
    .option('-l, --label <KEY=VALUE>', 'set a label on the container (KEY alone: an empty value)', collect)
    .option('-v, --volume <name-or-path:/path[:ro]>', 'mount a named volume or a host path', collect)
    .option('--tmpfs <path[:options]>', 'mount a tmpfs', collect)
    .option('-p, --publish <[ip:][hostPort:]containerPort[/proto]>', 'publish a container port on the host', collect)
    .option('-m, --memory <bytes>', 'memory limit (e.g. 64m)')
    .option('--cpus <number>', 'CPU limit (e.g. 1.5)')
    .option('--pids-limit <n>', 'process limit')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--network <mode>', 'bridge (default), host or none')
    .option('--restart <policy>', 'no, on-failure[:N], always, unless-stopped')
    .option('--entrypoint <command>', "replace the image's Entrypoint ('' clears it)")
    .option('-u, --user <user[:group]>', 'user name or uid, optional group')
    .option('-w, --workdir <dir>', 'working directory')
    .option('--hostname <name>', 'container hostname')
    .option('--stop-signal <signal>', 'signal that stops the container')
    .option('--stop-timeout <seconds>', 'seconds before stop kills the container')
    .option('--security-opt <option>', 'seccomp=unconfined runs without the default seccomp profile', collect)
    .option('--health-cmd <command>', 'command to run to check health (run by /bin/sh -c in the container)')
    .option('--health-interval <duration>', 'time between checks (ms|s|m|h, default 30s)')
    .option('--health-timeout <duration>', 'maximum time a check may run (ms|s|m|h, default 30s)')
    .option('--health-start-period <duration>', 'time to start before failures count (ms|s|m|h, default 0s)')
    .option('--health-start-interval <duration>', 'time between checks during the start period (ms|s|m|h, default 5s)')
    .option('--health-retries <n>', 'consecutive failures that make the container unhealthy (default 3)')
    .option('--no-healthcheck', "disable the image's HEALTHCHECK")
    .action(async (image: string, args: string[], flags: RunFlags, command: Command) => {
      process.exitCode = await runContainer(client(command), image, args, flags);
    });

  program
    .command('start')
    .description('start stopped containers')
    .argument('<container...>')
    .option('-a, --attach', "attach this terminal to the container's terminal (containers run with -t)")
    .option('-i, --interactive', 'with -a: send what is typed to the container')
    .option('--detach-keys <keys>', `keys that detach (default ${DEFAULT_DETACH_KEYS})`)
    .action(async (containers: string[], options: { attach?: boolean; interactive?: boolean; detachKeys?: string }, command: Command) => {
      if (options.attach || options.interactive) {
        process.exitCode = await startAndAttach(client(command), containers, options);
        return;
      }
      await eachNamed(containers, (container) => client(command).act(container, 'start'));
    });

  program
    .command('ps')
    .description('list containers')
    .option('-a, --all', 'show stopped containers too')
    .option('-q, --quiet', 'only show container ids')
    .option('--no-trunc', 'do not truncate ids and commands')
    .option('--format <template>', 'Go-template-like format, e.g. "{{.Names}}" or "table {{.ID}}\\t{{.Status}}"')
    .action(async (options: { all?: boolean; quiet?: boolean; trunc: boolean; format?: string }, command: Command) => {
      const [{ CONTAINER_HEADERS, containerRow, listFormat }, { containersTable }] = await Promise.all([
        formatRows(),
        import('./containers-table.js'),
      ]);
      const format = listFormat(options.format, CONTAINER_HEADERS);
      const containers = await client(command).containers(options.all === true);
      if (format) console.log(format.render(containers.map((container) => containerRow(container, !options.trunc))));
      else if (options.quiet) containers.forEach((container) => console.log(options.trunc ? container.id.slice(0, 12) : container.id));
      else console.log(containersTable(containers, { noTrunc: !options.trunc }));
    });

  program
    .command('logs')
    .description("print a container's output")
    .argument('<container>')
    .option('-f, --follow', 'keep printing new output until the container stops')
    .option('-n, --tail <lines>', 'only the last lines ("all" for everything)', 'all')
    .option('-t, --timestamps', 'prefix each line with its time')
    .option('--since <time>', 'only lines since a time (2026-11-23T10:00:00Z, unix seconds) or for a while (42m, 1h30m)')
    .action(
      async (container: string, options: { follow?: boolean; tail: string; timestamps?: boolean; since?: string }, command: Command) => {
        const since = options.since === undefined ? undefined : parseSince(options.since);
        await printLogEntries(
          client(command).logs(container, { follow: options.follow, tail: options.tail, since }),
          process,
          options.timestamps === true,
        );
      },
    );

  program
    .command('restart')
    .description('stop (the stop signal, then SIGKILL after the timeout) and start containers again')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait before killing')
    .action(async (containers: string[], options: { time?: string }, command: Command) => {
      await eachNamed(containers, async (container) => {
        await client(command).act(container, 'stop', stopQuery(options));
        await client(command).act(container, 'start');
      });
    });

  program
    .command('wait')
    .description('wait for containers to stop and print their exit codes')
    .argument('<container...>')
    .action(async (containers: string[], _options, command: Command) => {
      for (const container of containers) console.log((await client(command).act<{ exitCode: number }>(container, 'wait')).exitCode);
    });

  program
    .command('stop')
    .description('stop running containers: the stop signal, then SIGKILL after the timeout')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait before killing')
    .action(async (containers: string[], options: { time?: string }, command: Command) => {
      await eachNamed(containers, (container) => client(command).act(container, 'stop', stopQuery(options)));
    });

  program
    .command('kill')
    .description('send a signal to running containers')
    .argument('<container...>')
    .option('-s, --signal <signal>', 'signal to send', 'KILL')
    .action(async (containers: string[], options: { signal: string }, command: Command) => {
      await eachNamed(containers, (container) => client(command).act(container, 'kill', { signal: options.signal }));
    });

  program
    .command('rm')
    .description('remove containers (their writable layer and logs; named volumes stay)')
    .argument('<container...>')
    .option('-f, --force', 'kill and remove a running container')
    .action(async (containers: string[], options: { force?: boolean }, command: Command) => {
      await eachNamed(containers, (container) => client(command).removeContainer(container, options.force === true));
    });

  program
    .command('exec')
    .description('run a command in a running container')
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-e, --env <KEY=VALUE>', 'set an environment variable', collect)
    .option('-u, --user <user[:group]>', 'user name or uid, optional group')
    .option('-w, --workdir <dir>', 'working directory')
    .option('-i, --interactive', "keep the process's stdin open: this side's input goes to it (what is typed, with -t)")
    .option('-t, --tty', 'run the process on a pseudo-terminal')
    .option('--detach-keys <keys>', `keys that detach from the process's terminal (default ${DEFAULT_DETACH_KEYS})`)
    .action(async (container: string, args: string[], options: ExecFlags, command: Command) => {
      const request = { command: args, env: resolveEnv(options.env), user: options.user, workdir: options.workdir };
      if (options.tty) {
        const flags = { interactive: options.interactive === true, detachKeys: options.detachKeys };
        const { execOnTerminal } = await attachCommands();
        process.exitCode = await execOnTerminal(client(command), container, request, flags);
        return;
      }
      if (options.interactive) {
        const { execWithStdin } = await attachCommands();
        process.exitCode = await execWithStdin(client(command), container, request);
        return;
      }
      const last = await client(command).exec(container, request, (event) => {
        if (event.type === 'output') (event.stream === 'stdout' ? process.stdout : process.stderr).write(Buffer.from(event.data, 'base64'));
      });
      process.exitCode = last?.type === 'exit' ? last.exitCode : 1;
    });

  const volume = program.command('volume').description('manage named volumes');
  volume
    .command('create')
    .argument('<name>')
    .action(async (name: string, _options, command: Command) => console.log((await client(command).createVolume(name)).name));
  volume
    .command('ls')
    .option('-q, --quiet', 'only show names')
    .action(async (options: { quiet?: boolean }, command: Command) => {
      const volumes = await client(command).volumes();
      console.log(
        options.quiet
          ? volumes.map((entry) => entry.name).join('\n')
          : table(
              ['DRIVER', 'VOLUME NAME'],
              volumes.map((entry) => ['local', entry.name]),
            ),
      );
    });
  volume
    .command('rm')
    .description('remove volumes no container uses')
    .argument('<name...>')
    .action(async (names: string[], _options, command: Command) => {
      await eachNamed(names, (name) => client(command).removeVolume(name));
    });
  volume
    .command('prune')
    .description('remove every volume no container uses')
    .action(async (_options, command: Command) => {
      const { deleted } = await client(command).pruneVolumes();
      console.log(['Deleted Volumes:', ...deleted].join('\n'));
    });

  program
    .command('inspect')
    .description("show containers' full records as JSON")
    .argument('<container...>')
    .option('-f, --format <template>', 'Go-template-like format, e.g. "{{.State.Status}}" or "{{json .Config}}"')
    .action(async (containers: string[], options: { format?: string }, command: Command) => {
      const { inspectOutput } = await formatRows();
      console.log(inspectOutput(await Promise.all(containers.map((container) => client(command).inspect(container))), options.format));
    });
}

interface ExecFlags {
  env?: string[];
  user?: string;
  workdir?: string;
  interactive?: boolean;
  tty?: boolean;
  detachKeys?: string;
}

/** `start -a`: one container, started and attached to its terminal; the exit code is its own. */
async function startAndAttach(agent: AgentClient, containers: string[], options: { interactive?: boolean; detachKeys?: string }) {
  if (containers.length !== 1) throw new Error('you cannot start and attach multiple containers at once');
  const container = containers[0] ?? '';
  const { Config } = await agent.inspect(container);
  if (!Config.Tty)
    throw new Error(`start -a works with containers run with -t here; use logs -f ${container} to follow the output of others`);
  const { startAttached } = await attachCommands();
  return startAttached(agent, container, { interactive: options.interactive === true && Config.OpenStdin, detachKeys: options.detachKeys });
}

/** docker's verbs on several containers (or volumes): each in turn, its name printed as given once done. */
async function eachNamed(names: readonly string[], act: (name: string) => Promise<unknown>): Promise<void> {
  for (const name of names) {
    await act(name);
    console.log(name);
  }
}

function stopQuery(options: { time?: string }): Record<string, string> {
  return options.time === undefined ? {} : { t: options.time };
}

/** docker run: create (pulling a missing image), start, and unless detached print the output and return the exit code. */
async function runContainer(agent: AgentClient, image: string, args: string[], flags: RunFlags): Promise<number> {
  const attachTty = flags.tty === true && flags.detach !== true;
  if (attachTty) {
    parseDetachKeys(flags.detachKeys ?? DEFAULT_DETACH_KEYS);
    (await attachCommands()).checkInputIsTerminal(flags.interactive === true);
  }
  const request: CreateRequest = {
    image,
    ...(args.length > 0 ? { command: args } : {}),
    name: flags.name,
    entrypoint: flags.entrypoint,
    env: resolveEnv(flags.env),
    volumes: flags.volume,
    tmpfs: flags.tmpfs,
    publish: flags.publish,
    memory: flags.memory,
    cpus: flags.cpus,
    pidsLimit: flags.pidsLimit === undefined ? undefined : Number(flags.pidsLimit),
    readOnly: flags.readOnly,
    interactive: flags.interactive,
    tty: flags.tty,
    consoleSize: flags.tty ? terminalSizeOf(process.stdout) : undefined,
    network: flags.network,
    restart: flags.restart,
    user: flags.user,
    workdir: flags.workdir,
    hostname: flags.hostname,
    stopSignal: flags.stopSignal,
    stopTimeout: flags.stopTimeout === undefined ? undefined : Number(flags.stopTimeout),
    securityOpt: flags.securityOpt,
    healthCmd: flags.healthCmd,
    healthInterval: flags.healthInterval,
    healthTimeout: flags.healthTimeout,
    healthStartPeriod: flags.healthStartPeriod,
    healthStartInterval: flags.healthStartInterval,
    healthRetries: flags.healthRetries,
    noHealthcheck: !flags.healthcheck,
    labels: labelsOf(flags.label),
    // The daemon removes the container once it has run (and an attached start has sent all its output), as
    // docker's AutoRemove: no request for it, and none is needed when this command is killed or detached.
    autoRemove: flags.rm === true,
  };
  const { id } = await createPullingIfMissing(agent, request);
  if (attachTty) return startAttachedRemovingOnFailure(agent, id, flags);
  let started = false;
  let stdin: { done: Promise<void>; stop(): void } | undefined;
  const exit: { code?: number } = {};
  try {
    if (flags.detach) {
      await agent.act(id, 'start');
      console.log(id);
      return 0;
    }
    const output = agent.startWithOutput(id, () => {
      started = true;
      stdin = flags.interactive ? agent.attachStdin(id, process.stdin) : undefined;
      stdin?.done.catch((error: Error) => console.error(`Error: stdin: ${error.message}`));
    });
    await printLogEntries(logLinesUntilExit(output, exit), process, false);
  } catch (error) {
    if (flags.rm && !started) await agent.removeContainer(id, true);
    throw error;
  } finally {
    stdin?.stop();
  }
  if (exit.code === undefined) throw new Error(`the daemon ended the output of container ${id} without its exit code`);
  return exit.code;
}

/** The log lines of an attached start, up to the last line: the exit code, kept in `exit`. */
async function* logLinesUntilExit(lines: AsyncIterable<LogLine | RunExit>, exit: { code?: number }): AsyncGenerator<LogLine> {
  for await (const line of lines) {
    if ('exitCode' in line) exit.code = line.exitCode;
    else yield line;
  }
}

/** The daemon removes a `--rm` container once it has run; one that could not start is removed here, as docker does. */
async function startAttachedRemovingOnFailure(agent: AgentClient, id: string, flags: RunFlags): Promise<number> {
  const { startAttached, startAttachedThenRemoved } = await attachCommands();
  const attach = flags.rm ? startAttachedThenRemoved : startAttached;
  try {
    return await attach(agent, id, { interactive: flags.interactive === true, detachKeys: flags.detachKeys });
  } catch (error) {
    if (flags.rm && error instanceof AgentRequestError) await agent.removeContainer(id, true).catch(() => undefined);
    throw error;
  }
}

async function createPullingIfMissing(agent: AgentClient, request: CreateRequest): Promise<{ id: string; name: string }> {
  try {
    return await agent.create(request);
  } catch (error) {
    if (!(error instanceof AgentRequestError && error.code === AgentErrors.IMAGE_UNKNOWN.code)) throw error;
    console.error(`Unable to find image '${request.image}' locally`);
    const { pullImage } = await import('./pull-image.js');
    await pullImage(agent, request.image, undefined, process.stderr);
    return agent.create(request);
  }
}

/** docker's --since: a duration before now (`42m`, `1h30m`), unix seconds, or a timestamp. */
export function parseSince(text: string, now = Date.now()): Date {
  // As docker: "0" is the epoch, not a duration.
  const duration = text === '0' ? undefined : parseGoDuration(text);
  if (duration && 'nanoseconds' in duration) return new Date(now - duration.nanoseconds / 1e6);
  const date = /^\d+(\.\d+)?$/.test(text) ? new Date(Number(text) * 1000) : new Date(text);
  if (Number.isNaN(date.getTime()))
    throw new Error(`invalid --since ${JSON.stringify(text)}: a timestamp, unix seconds or a duration such as 10m`);
  return date;
}

/** docker's `--label KEY=VALUE` (a bare KEY has an empty value); a later KEY wins. */
function labelsOf(labels: string[] = []): Record<string, string> {
  return Object.fromEntries(
    labels.map((label) => [label.split('=', 1)[0]!, label.includes('=') ? label.slice(label.indexOf('=') + 1) : '']),
  );
}

/** `KEY=VALUE` stays; a bare `KEY` takes this process's value and is dropped when unset, as docker does. */
function resolveEnv(variables: string[] = []): string[] {
  return variables.flatMap((variable) => {
    if (variable.includes('=')) return [variable];
    const value = process.env[variable];
    return value === undefined ? [] : [`${variable}=${value}`];
  });
}
