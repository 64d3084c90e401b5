import type { Command } from 'commander';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { ComposeError } from './compose/compose.js';
import { loadComposeFile } from './compose/load-compose.js';
import { TERMINAL_ROLLOUTS, watchRollout, type WatchedService } from './rollout-watch.js';
import { type AdminClient, CliError, count, enc, print, run, withApi } from '../admin-cli.js';

interface RolloutView {
  revision: number;
  status: string;
  reason: string | null;
}

interface ServiceView {
  service: string;
  rollout: RolloutView | null;
}

const WAIT_POLL_MS = 500;

/**
 * `berth deploy|stack|service|rollout|node`: the deployment commands, clients of the registry's admin API
 * (the registry resolves tags to digests and runs the controller). The compose file is read here, as docker
 * compose does: variables from this environment, env files relative to the file.
 */
export function registerDeployCommands(program: Command): void {
  const description =
    'deploy (or update) a stack from a compose file; with --wait, exit 0 once healthy, non-zero with the reason if reverted or paused';
  withDeployOptions(
    withApi(program.command('deploy <stack>')).description(description).requiredOption('-f, --file <compose.yaml>', 'the compose file'),
  ).action(run(async (api, stack: string, options: DeployOptions) => deploy(api, stack, options)));

  const stack = program.command('stack').description('deploy, list, inspect and remove stacks');
  // docker stack deploy's spelling of the same.
  withDeployOptions(
    withApi(stack.command('deploy <stack>'))
      .description(description)
      .requiredOption('-c, --compose-file <compose.yaml>', 'the compose file'),
  ).action(
    run(async (api, name: string, options: Omit<DeployOptions, 'file'> & { composeFile: string }) =>
      deploy(api, name, { ...options, file: options.composeFile }),
    ),
  );
  withApi(stack.command('ls'))
    .description('list stacks')
    .action(run(async (api) => print(await api.call('GET', 'stacks'))));
  withApi(stack.command('rm <stack...>'))
    .alias('remove')
    .description("remove stacks: their services go at once, and the nodes stop and remove the services' containers")
    .action(
      run(async (api, names: string[]) => {
        // As docker: every stack named is tried, and the refusals are told at the end.
        const refused: string[] = [];
        for (const name of names) {
          try {
            const removed = (await api.call('DELETE', `stacks/${enc(name)}`)) as { services: string[] };
            for (const each of removed.services) process.stdout.write(`Removing service ${name}/${each}\n`);
          } catch (error) {
            if (!(error instanceof CliError)) throw error;
            refused.push(error.message);
          }
        }
        if (refused.length > 0) throw new CliError(refused.join('\n'));
      }),
    );
  withApi(stack.command('ps <stack>'))
    .description('every replica of the stack: node, revision, health')
    .action(run(async (api, name: string) => print(await api.call('GET', `stacks/${enc(name)}`))));

  const service = program.command('service').description('inspect, roll back and scale services (<stack>/<service>)');
  withApi(service.command('ls <stack>'))
    .description("the stack's services with their rollout")
    .action(
      run(async (api, name: string) => {
        const body = (await api.call('GET', `stacks/${enc(name)}`)) as { services: ServiceView[] };
        print(body.services.map(({ service: id, rollout }) => ({ service: id, rollout })));
      }),
    );
  withApi(service.command('ps <service>'))
    .description('the replicas of one service')
    .action(run(async (api, id: string) => print(await api.call('GET', servicePath(id)))));
  withApi(service.command('logs <service>'))
    .description("the logs of the service's replicas, gathered from their nodes, each line prefixed with its replica and node")
    .option('-f, --follow', 'follow the logs')
    .option('-n, --tail <lines>', 'the number of lines from the end of each replica\'s log ("all")', 'all')
    .action(
      run(async (api, id: string, options: { follow?: boolean; tail: string }) => {
        const tail = options.tail === 'all' ? 'all' : String(count(options.tail));
        const body = await api.stream(`${servicePath(id)}/logs?tail=${tail}&follow=${options.follow === true}`);
        await pipeline(Readable.fromWeb(body as NodeReadableStream<Uint8Array>), process.stdout, { end: false });
      }),
    );
  withApi(service.command('history <service>'))
    .description('revisions and rollout events, newest first')
    .action(run(async (api, id: string) => print(await api.call('GET', `${servicePath(id)}/history`))));
  withApi(service.command('rollback <service>'))
    .description('roll back to the last fully healthy revision')
    .action(run(async (api, id: string) => print(await api.call('POST', `${servicePath(id)}/rollback`))));
  withApi(service.command('scale <service> <replicas>'))
    .description('set the number of replicas')
    .action(
      run(async (api, id: string, replicas: string) =>
        print(await api.call('POST', `${servicePath(id)}/scale`, { replicas: count(replicas) })),
      ),
    );

  const rollout = program.command('rollout').description('rollouts');
  withApi(rollout.command('status <service>'))
    .description("the service's current or last rollout; exit 1 when it was reverted, paused or failed")
    .option('-w, --watch', 'follow the rollout, a line per change, until it ends')
    .option('--timeout <seconds>', 'with --watch: give up after this long', '900')
    .action(
      run(async (api, id: string, options: { watch?: boolean; timeout: string }) => {
        if (options.watch) return watch(api, id, count(options.timeout));
        const body = (await api.call('GET', servicePath(id))) as ServiceView;
        print(body.rollout);
        if (body.rollout && ['reverted', 'paused', 'failed'].includes(body.rollout.status)) process.exitCode = 1;
      }),
    );

  const node = program.command('node').description('nodes that run deployments');
  withApi(node.command('token'))
    .description('issue a join token for `berth-agent daemon --join URL --token T` (printed once)')
    .option('--ttl <seconds>', 'how long it can be used')
    .action(
      run(async (api, options: { ttl?: string }) =>
        print(await api.call('POST', 'nodes/tokens', options.ttl ? { ttlSeconds: count(options.ttl) } : {})),
      ),
    );
  withApi(node.command('ls'))
    .description('list nodes')
    .action(run(async (api) => print(await api.call('GET', 'nodes'))));
  withApi(node.command('label <node> <labels...>'))
    .description('set labels (key=value) or remove them (key-)')
    .action(
      run(async (api, name: string, labels: string[]) =>
        print(await api.call('PATCH', `nodes/${enc(name)}`, { labels: labelChanges(labels) })),
      ),
    );
  withApi(node.command('drain <node>'))
    .description('move its replicas to other nodes and place none there (--undo: take replicas again)')
    .option('--undo', 'make it active again')
    .action(
      run(async (api, name: string, options: { undo?: boolean }) =>
        print(await api.call('PATCH', `nodes/${enc(name)}`, { availability: options.undo ? 'active' : 'drain' })),
      ),
    );
  withApi(node.command('rm <node>'))
    .description('forget a node (it must join again); its replicas are placed elsewhere')
    .action(run(async (api, name: string) => print(await api.call('DELETE', `nodes/${enc(name)}`))));
}

interface DeployOptions {
  file: string;
  wait?: boolean;
  timeout: string;
}

function withDeployOptions(command: Command): Command {
  return command
    .option('--wait', 'wait until every changed service finished rolling out')
    .option('--timeout <seconds>', 'give up waiting after this long', '900');
}

async function deploy(api: AdminClient, stack: string, options: DeployOptions): Promise<void> {
  let document: Record<string, unknown>;
  try {
    document = (await loadComposeFile(options.file, process.env)).document;
  } catch (error) {
    if (error instanceof ComposeError) throw new CliError(`${options.file}:\n${error.message}`, 2);
    throw error;
  }
  const result = (await api.call('POST', `stacks/${enc(stack)}`, { compose: document })) as {
    services: Record<string, { revision: number; digest: string; changed: boolean }>;
  };
  for (const [name, service] of Object.entries(result.services))
    process.stdout.write(`${stack}/${name}: revision ${service.revision} ${service.digest}${service.changed ? '' : ' (unchanged)'}\n`);
  if (!options.wait) return;
  const deadline = Date.now() + count(options.timeout) * 1000;
  const failures: string[] = [];
  for (const [name, service] of Object.entries(result.services)) {
    const rollout = await waitForRollout(api, `${stack}/${name}`, service.revision, deadline);
    process.stdout.write(`${stack}/${name}: ${rollout.status}${rollout.reason ? `: ${rollout.reason}` : ''}\n`);
    if (rollout.status !== 'succeeded') failures.push(`${stack}/${name} ${rollout.status}${rollout.reason ? `: ${rollout.reason}` : ''}`);
  }
  if (failures.length > 0) throw new CliError(failures.join('\n'));
}

async function waitForRollout(api: AdminClient, id: string, revision: number, deadline: number): Promise<RolloutView> {
  while (Date.now() < deadline) {
    const { rollout } = (await api.call('GET', servicePath(id))) as ServiceView;
    if (rollout && rollout.revision >= revision && TERMINAL_ROLLOUTS.has(rollout.status)) return rollout;
    await sleep(WAIT_POLL_MS);
  }
  throw new CliError(`${id}: still rolling out after --timeout; see berth rollout status ${id}`);
}

/** `rollout status --watch`: each change as it comes; exit 0 once succeeded, 1 with the reason otherwise. */
async function watch(api: AdminClient, id: string, timeoutSeconds: number): Promise<void> {
  const path = servicePath(id);
  const last = await watchRollout(
    async () => (await api.call('GET', path)) as WatchedService,
    (line) => process.stdout.write(`${line}\n`),
    { deadline: Date.now() + timeoutSeconds * 1000, pollMs: WAIT_POLL_MS },
  );
  if (!last) throw new CliError(`${id}: still rolling out after --timeout ${timeoutSeconds}`);
  const rollout = last.rollout!;
  if (rollout.status !== 'succeeded')
    throw new CliError(`${id} ${rollout.status} revision ${rollout.revision}${rollout.reason ? `: ${rollout.reason}` : ''}`);
}

function servicePath(id: string): string {
  const [stack, service, extra] = id.split('/');
  if (!stack || !service || extra !== undefined) throw new CliError(`a service is named <stack>/<service>, not ${JSON.stringify(id)}`, 2);
  return `stacks/${enc(stack)}/services/${enc(service)}`;
}

function labelChanges(labels: string[]): Record<string, string | null> {
  return Object.fromEntries(
    labels.map((label) => {
      if (label.endsWith('-') && !label.includes('=')) return [label.slice(0, -1), null];
      const equals = label.indexOf('=');
      if (equals < 1) throw new CliError(`a label is key=value (or key- to remove it), not ${JSON.stringify(label)}`, 2);
      return [label.slice(0, equals), label.slice(equals + 1)];
    }),
  );
}
