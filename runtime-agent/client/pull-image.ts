import type { AgentClient } from './agent-client.js';
import { pullDisplay } from './pull-display.js';

/** Pulls through the daemon with docker-style progress on `output`; prints the pulled reference. */
export async function pullImage(
  agent: AgentClient,
  reference: string,
  creds: string | undefined,
  output: NodeJS.WriteStream,
): Promise<void> {
  const [username, ...password] = creds?.split(':') ?? [];
  const display = await pullDisplay(output);
  let last;
  try {
    last = await agent.pull({ reference, ...(username !== undefined ? { username, password: password.join(':') } : {}) }, (event) =>
      display.show(event),
    );
  } finally {
    display.stop();
  }
  if (last?.type === 'done') {
    output.write(`${last.image.repository}${last.image.tag ? `:${last.image.tag}` : `@${last.image.digest}`}\n`);
    return;
  }
  throw new Error(last?.type === 'error' ? last.message : 'the daemon ended the pull without a result');
}
