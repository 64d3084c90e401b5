import type { Command } from 'commander';
import { shortDigest } from '../../oci/digest.js';
import { DEFAULT_REGISTRY } from '../../oci/reference.js';
import type { AgentClient } from './agent-client.js';
import { IMAGE_HEADERS, imageRow, listFormat } from './format-rows.js';
import { humanSize } from './human-format.js';
import { imagesTable } from './images-table.js';

/** docker's image store and registry verbs: login, logout, images, rmi, prune (pull is pull-command.ts). */

type ClientOf = (command: Command) => AgentClient;

export function addImageStoreCommands(program: Command, client: ClientOf): void {
  program
    .command('login')
    .description('log in to a registry: the daemon checks the credentials and uses them for its pulls')
    .argument('[server]', 'registry host[:port]', DEFAULT_REGISTRY)
    .requiredOption('-u, --username <name>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (server: string, options: { username: string; password?: string; passwordStdin?: boolean }, command: Command) => {
      if (options.password !== undefined) console.error('WARNING! Using --password via the CLI is insecure. Use --password-stdin.');
      const password = options.passwordStdin ? await readStdin() : options.password;
      if (password === undefined || password === '') throw new Error('a password is required: --password-stdin or -p');
      console.log((await client(command).login({ registry: server, username: options.username, password })).status);
    });

  program
    .command('logout')
    .description('forget the credentials saved for a registry')
    .argument('[server]', 'registry host[:port]', DEFAULT_REGISTRY)
    .action(async (server: string, _options, command: Command) => {
      const { removed } = await client(command).logout(server);
      console.log(removed ? `Removing login credentials for ${server}` : `Not logged in to ${server}`);
    });

  program
    .command('images')
    .description('list pulled images')
    .option('-q, --quiet', 'only show image ids')
    .option('--no-trunc', 'do not truncate image ids')
    .option('--format <template>', 'Go-template-like format, e.g. "{{.Repository}}:{{.Tag}}" or "table {{.ID}}\\t{{.Size}}"')
    .action(async (options: { quiet?: boolean; trunc: boolean; format?: string }, command: Command) => {
      const format = listFormat(options.format, IMAGE_HEADERS);
      const images = await client(command).images();
      if (format) console.log(format.render(images.map((image) => imageRow(image, !options.trunc))));
      else if (options.quiet) console.log([...new Set(images.map((image) => shortDigest(image.id)))].join('\n'));
      else console.log(imagesTable(images));
    });

  program
    .command('rmi')
    .description('remove images (by reference or id) and the content only they used')
    .argument('<image...>')
    .action(async (references: string[], _options, command: Command) => {
      for (const reference of references) {
        const result = await client(command).remove(reference);
        for (const untagged of result.untagged) console.log(`Untagged: ${untagged}`);
        for (const deleted of result.deleted) console.log(`Deleted: ${deleted}`);
      }
    });

  program
    .command('prune')
    .description('remove content and snapshots no image references, and leftovers of interrupted pulls')
    .action(async (_options, command: Command) => {
      const result = await client(command).prune();
      for (const deleted of [...result.deletedBlobs, ...result.deletedSnapshots]) console.log(`Deleted: ${deleted}`);
      console.log(`Total reclaimed space: ${humanSize(result.reclaimedBytes)}`);
    });
}

/** The whole of standard input without its trailing newline, as docker's --password-stdin reads it. */
async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.replace(/\r?\n$/, '');
}
