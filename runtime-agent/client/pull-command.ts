import type { Command } from 'commander';
import type { ClientOf } from './command-groups.js';

/**
 * `pull`, a group of its own: what it loads before the daemon answers is this and the client, none of the
 * image listing's formatting and digest code (each module costs CPU at every start, and a pull is often scripted).
 */
export function addPullCommand(program: Command, client: ClientOf): void {
  program
    .command('pull')
    .description('pull an image from a registry')
    .argument('<reference>', 'e.g. 127.0.0.1:5000/team/app:1.0 or name@sha256:...')
    .option('--creds <user:password>', 'credentials for the registry')
    .action(async (reference: string, options: { creds?: string }, command: Command) => {
      const { pullImage } = await import('./pull-image.js');
      await pullImage(client(command), reference, options.creds, process.stdout);
    });
}
