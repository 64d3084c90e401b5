import test from 'ava';
import { compileFormat, FormatError } from '../../runtime-agent/client/format-template.js';
import { parseCopyArguments, portLines, statsRow } from '../../runtime-agent/client/container-verbs.js';

const inspected = {
  Id: 'abc',
  State: { Status: 'running', Health: null, Running: true },
  Config: { Env: ['PATH=/bin', 'A=1'], Labels: { b: '2', a: '1' }, Cmd: ['sh', '-c', 'echo hi'] },
};

test('fields, nested fields and Go-printed lists and maps', (t) => {
  t.is(compileFormat('{{.Id}} {{.State.Status}}').render([inspected]), 'abc running');
  t.is(compileFormat('{{.Config.Env}}').render([inspected]), '[PATH=/bin A=1]');
  t.is(compileFormat('{{.Config.Labels}}').render([inspected]), 'map[a:1 b:2]');
  t.is(compileFormat('{{.State.Running}}').render([inspected]), 'true');
});

test('json, join, upper and the whole item', (t) => {
  t.is(compileFormat('{{json .Config.Cmd}}').render([inspected]), '["sh","-c","echo hi"]');
  t.is(compileFormat('{{join .Config.Env ","}}').render([inspected]), 'PATH=/bin,A=1');
  t.is(compileFormat('{{upper .State.Status}}').render([inspected]), 'RUNNING');
  t.is(compileFormat('{{json .}}').render([{ a: 1 }]), '{"a":1}');
});

test('table prefix: docker headers, aligned columns, one row per item', (t) => {
  const format = compileFormat('table {{.ID}}\\t{{.Names}}\\t{{.RunningFor}}', { ID: 'CONTAINER ID', RunningFor: 'CREATED' });
  t.true(format.isTable);
  t.is(
    format.render([
      { ID: '0123456789ab', Names: 'web', RunningFor: '2 minutes ago' },
      { ID: 'ba9876543210', Names: 'a-longer-name', RunningFor: '1 hour ago' },
    ]),
    [
      'CONTAINER ID   NAMES           CREATED',
      '0123456789ab   web             2 minutes ago',
      'ba9876543210   a-longer-name   1 hour ago',
    ].join('\n'),
  );
});

test('an unknown field, a nil parent, an unknown function and a bad template are errors naming the culprit', (t) => {
  t.throws(() => compileFormat('{{.Nope}}').render([inspected]), { instanceOf: FormatError, message: /can't evaluate field Nope/ });
  t.throws(() => compileFormat('{{.State.Health.Status}}').render([inspected]), { message: /nil pointer evaluating \.State\.Health/ });
  t.throws(() => compileFormat('{{shout .Id}}'), { message: /function "shout" not defined/ });
  t.throws(() => compileFormat('{{.Id'), { message: /unclosed action/ });
});

test('cp arguments: CONTAINER:PATH on exactly one side; a colon after a slash is a local path', (t) => {
  t.deepEqual(parseCopyArguments('web:/etc/hosts', './out'), {
    source: { container: 'web', path: '/etc/hosts' },
    destination: { container: undefined, path: './out' },
  });
  t.deepEqual(parseCopyArguments('./a:b', 'web:/tmp').source, { container: undefined, path: './a:b' });
  t.throws(() => parseCopyArguments('a', 'b'), { message: /must specify at least one container source/ });
  t.throws(() => parseCopyArguments(':/x', 'b'), { message: /the container name is empty/ });
});

test('port lines and stats rows are worded as docker words them', (t) => {
  const ports = { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }] };
  t.deepEqual(portLines(ports, 'web', undefined), ['80/tcp -> 0.0.0.0:8080', '53/udp -> 127.0.0.1:5353']);
  t.deepEqual(portLines(ports, 'web', '53/udp'), ['127.0.0.1:5353']);
  t.throws(() => portLines(ports, 'web', '81'), { message: "No public port '81/tcp' published for web" });
  const sample = {
    id: 'f'.repeat(64),
    name: 'web',
    read: '',
    cpuUsageNs: 2e9,
    systemUsageNs: 10e9,
    onlineCpus: 2,
    memoryUsage: 1.5 * 1024 * 1024,
    memoryLimit: 64 * 1024 * 1024,
    pids: 3,
    netRx: 1234,
    netTx: 0,
    blockRead: 0,
    blockWrite: 4096,
  };
  const row = statsRow({ ...sample, cpuUsageNs: 1e9, systemUsageNs: 8e9 }, sample, false, 'web');
  t.like(row, { CPUPerc: '100.00%', MemUsage: '1.5MiB / 64MiB', MemPerc: '2.34%', NetIO: '1.23kB / 0B', BlockIO: '0B / 4.1kB', PIDs: '3' });
});
