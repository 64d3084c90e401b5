import test from 'ava';
import { listeningPort, spawnUntilListening } from '../../platform/process.js';

const node = process.execPath;

test('spawnUntilListening resolves with what the output announces, and keeps the output', async (t) => {
  const script = `setTimeout(() => console.log(JSON.stringify({ port: 4321, msg: 'demo listening' })), 100); setTimeout(() => {}, 10000);`;
  const { process: child, listening } = await spawnUntilListening(node, ['-e', script], {
    name: 'demo',
    timeoutMs: 5000,
    listening: (output) => listeningPort(output, 'demo listening'),
  });
  t.teardown(() => child.child.kill('SIGKILL'));
  t.is(listening, 4321);
  t.true(child.output.includes('demo listening'));
});

test('a process that exits before listening is reported with its exit code and output', async (t) => {
  await t.throwsAsync(
    spawnUntilListening(node, ['-e', 'console.error("bad config"); process.exit(3)'], {
      name: 'demo',
      timeoutMs: 5000,
      listening: () => undefined,
    }),
    {
      message: /demo listening: exited \(code 3[\s\S]*bad config/,
    },
  );
});

test('a process that never listens is killed after the timeout', async (t) => {
  const started = Date.now();
  await t.throwsAsync(
    spawnUntilListening(node, ['-e', 'setTimeout(() => {}, 60000)'], { name: 'demo', timeoutMs: 300, listening: () => undefined }),
    { message: /not within 300 ms/ },
  );
  t.true(Date.now() - started < 5000);
});

test('listeningPort reads JSON and pretty start-up lines', (t) => {
  t.is(listeningPort('{"level":30,"port":5000,"msg":"berth registry listening"}\n', 'berth registry listening'), 5000);
  t.is(listeningPort('[12:00] INFO: berth registry listening {"host":"127.0.0.1","port":5001}\n', 'berth registry listening'), 5001);
  t.is(listeningPort('starting\n', 'berth registry listening'), undefined);
});
