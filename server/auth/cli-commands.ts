import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { silentLogger } from '../../platform/logger.js';
import { loadConfig, locationFlags, type Config } from '../config.js';
import { openRegistryRedis } from '../redis/registry-redis.js';
import { RuleAuthorizer } from './authorizer.js';
import { effectivePermissions } from './effective-permissions.js';
import type { RuleAction } from './permissions.js';
import { authStores } from './setup.js';

interface StoreOptions {
  config?: string;
  dataDir?: string;
  redisUrl?: string;
}

type Stores = ReturnType<typeof authStores> & { config: Config };

/**
 * `berth user|robot|permission ...`: account and rule management straight on the registry's Redis, which
 * is how the first admin is made (the admin API needs one). With the embedded Redis the registry must be
 * running, since it owns that Redis.
 */
export function registerAuthCommands(program: Command): void {
  const user = withStoreOptions(program.command('user').description('manage users (passwords are read from standard input)'));
  subcommand(user, 'add <name>', 'create a user or replace its password (read from stdin), groups and role')
    .option('--admin', 'give the admin role (all repositories, the catalog and the admin API)')
    .option('--group <group...>', 'groups the user belongs to')
    .action(
      run(async (stores, name: string, options: { admin?: boolean; group?: string[] }) => {
        const password = (await readStdin()).replace(/\r?\n$/, '');
        return stores.accounts.putUser(name, password, { admin: options.admin ?? false, groups: options.group ?? [] });
      }),
    );
  subcommand(user, 'remove <name>', 'delete a user').action(run((stores, name: string) => stores.accounts.deleteUser(name)));
  subcommand(user, 'list', 'list users').action(run((stores) => stores.accounts.listUsers()));

  const robot = withStoreOptions(program.command('robot').description('manage robot accounts (they log in as robot$<name>)'));
  subcommand(robot, 'add <name>', 'create a robot account and print its secret, which is shown only this once')
    .option('--expires <time>', 'ISO 8601 time after which it can no longer log in')
    .option('--group <group...>', 'groups the robot belongs to')
    .option('--description <text>', 'what it is for')
    .action(
      run(async (stores, name: string, options: { expires?: string; group?: string[]; description?: string }) => {
        const created = await stores.accounts.createRobot({
          name,
          groups: options.group,
          expiresAt: options.expires === undefined ? undefined : parseTime(options.expires),
          description: options.description,
        });
        return { ...created.robot, secret: created.secret };
      }),
    );
  subcommand(robot, 'secret <name>', 'give a robot account a new secret and print it once; the old one and its tokens stop working').action(
    run(async (stores, name: string) => {
      const regenerated = await stores.accounts.regenerateRobotSecret(name);
      return regenerated ? { ...regenerated.robot, secret: regenerated.secret } : false;
    }),
  );
  subcommand(robot, 'remove <name>', 'delete a robot account').action(run((stores, name: string) => stores.accounts.deleteRobot(name)));
  subcommand(robot, 'list', 'list robot accounts with expiry and last use').action(run((stores) => stores.accounts.listRobots()));

  const permission = withStoreOptions(program.command('permission').description('manage repository permission rules (default deny)'));
  subcommand(
    permission,
    'add <subject> <repositories> <actions>',
    'grant e.g. group:team-a "team-a/**" pull,push (or anonymous "*/public-*" pull; catalog: list them in /v2/_catalog)',
  ).action(
    run((stores, subject: string, repositories: string, actions: string) =>
      stores.rules.add({ subject, repositories, actions: actions.split(',') as RuleAction[] }),
    ),
  );
  subcommand(permission, 'remove <id>', 'delete a rule').action(run((stores, id: string) => stores.rules.remove(id)));
  subcommand(permission, 'list', 'list rules').action(run((stores) => stores.rules.list()));
  subcommand(permission, 'show <account>', 'the rules that apply to an account (or "anonymous")')
    .option('--repository <name>', 'also the actions allowed on this repository')
    .action(
      run((stores, account: string, options: { repository?: string }) =>
        effectivePermissions(stores.identities, new RuleAuthorizer(stores.rules), account, options.repository),
      ),
    );
}

function withStoreOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'the registry configuration file (also BERTH_CONFIG)')
    .option('-d, --data-dir <dir>', 'the registry data directory, whose embedded Redis holds the accounts')
    .option('--redis-url <url>', 'the registry Redis, when it is not embedded');
}

function subcommand(parent: Command, spec: string, description: string): Command {
  return parent.command(spec).description(description);
}

/** Wraps an action: opens the stores with the parent command's options, prints the result as JSON, closes. */
function run<Args extends unknown[]>(action: (stores: Stores, ...args: Args) => Promise<unknown>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const options = command.parent!.opts<StoreOptions>();
    let redis: Redis | undefined;
    try {
      const config = loadConfig({ file: options.config, flags: locationFlags(options) });
      redis = openRegistryRedis(config, silentLogger());
      const result = await action({ ...authStores(config, redis), config }, ...(args.slice(0, -1) as Args));
      // The remove commands answer false for a name or id that does not exist.
      if (result === false) throw new Error('no such entry');
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (error) {
      process.stderr.write(`berth: ${(error as Error).message}\n`);
      process.exitCode = 1;
    } finally {
      redis?.disconnect();
    }
  };
}

function parseTime(value: string): Date {
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new Error(`not an ISO 8601 time: ${value}`);
  return time;
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of process.stdin as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts).toString('utf8');
}
