import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CodedError, registeredErrorCodes } from '../../platform/errors.js';
import type { ApiError } from '../../runtime-agent/api.js';
import { AgentErrors } from '../../runtime-agent/errors.js';
import { matchingImages } from '../../runtime-agent/image/image-lookup.js';
import type { ImageRecord, ImageStore } from '../../runtime-agent/image/image-store.js';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { AuthProxy } from '../helpers/agent-auth-proxy.js';
import { busyboxEntries, layerOf, pushLayout, writeImageLayout } from '../helpers/agent-images.js';
import { freePort } from '../helpers/free-port.js';
import { RegistryProcess } from '../helpers/registry-process.js';

/**
 * Every error code of the agent's API, provoked over the daemon's socket: its status and its JSON body
 * (`{"errors":[{"code","message"}]}`). Codes no request can provoke on purpose are listed in UNREACHABLE.
 */

/** What an unexpected failure becomes: no request provokes it on purpose. */
const UNREACHABLE = new Set(['INTERNAL']);
const CREDENTIALS = { username: 'deployer', password: 'deployer-password-1' };

let registry: RegistryProcess;
let proxy: AuthProxy;
let agent: AgentDaemon;
let workDir: string;
let image: string;
const seen = new Set<string>();

interface Answer {
  status: number;
  body: ApiError;
}

function api(method: string, apiPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        socketPath: path.join(agent.dataDir, 'agent.sock'),
        method,
        path: apiPath,
        headers: { 'Content-Type': 'application/json', ...headers },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as ApiError }));
      },
    );
    outgoing.once('error', reject);
    outgoing.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

/** Asserts the answer is exactly one error with this code, its registered status and a message matching `message`. */
function assertError(t: ExecutionContext, answer: Answer, key: keyof typeof AgentErrors, message: RegExp): void {
  const code = AgentErrors[key];
  t.is(answer.status, code.status, `status of ${key}`);
  t.is(answer.body.errors.length, 1);
  t.is(answer.body.errors[0]?.code, code.code);
  t.regex(answer.body.errors[0]?.message ?? '', message);
  seen.add(key);
}

async function createContainer(options: Record<string, unknown>): Promise<string> {
  const created = await api('POST', '/v1/containers', { image, network: 'none', ...options });
  if (created.status !== 201) throw new Error(`create answered ${created.status}: ${JSON.stringify(created.body)}`);
  return (created.body as unknown as { id: string }).id;
}

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-agent-codes-'));
  [registry, agent] = await Promise.all([RegistryProcess.start(), AgentDaemon.start()]);
  proxy = await AuthProxy.start(registry.url, 'basic', CREDENTIALS);
  const layout = path.join(workDir, 'layout');
  await writeImageLayout(layout, 'v1', { layers: [await layerOf(await busyboxEntries(['sh', 'sleep', 'cat']), 'gzip')] });
  image = `${registry.host}/codes/busybox:v1`;
  await pushLayout(layout, 'v1', image);
  await agent.cli(['pull', image]);
});

test.after.always(async () => {
  await agent?.destroy();
  await proxy?.close();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

test.serial('an unknown path answers 404 ROUTE_UNKNOWN', async (t) => {
  assertError(t, await api('GET', '/v1/nothing'), 'ROUTE_UNKNOWN', /^no route GET \/v1\/nothing$/);
});

test.serial('a body of the wrong shape answers 400 REQUEST_INVALID naming the field', async (t) => {
  const answer = await api('POST', '/v1/containers', { image: 7 });
  assertError(t, answer, 'REQUEST_INVALID', /^invalid request: image: Invalid input: expected string, received number$/);
  t.deepEqual(answer.body.errors[0]?.detail, { fields: [{ field: 'image', message: 'Invalid input: expected string, received number' }] });
  assertError(t, await api('POST', '/v1/containers/x/exec', { command: [] }), 'REQUEST_INVALID', /^invalid request: command: /);
  assertError(t, await api('POST', '/v1/auth', { registry: 'r', password: 'p' }), 'REQUEST_INVALID', /username/);
  assertError(t, await api('POST', '/v1/volumes', '{not json'), 'REQUEST_INVALID', /^request body is not JSON$/);
  assertError(t, await api('POST', '/v1/containers/x/stop?t=soon'), 'REQUEST_INVALID', /^t must be a non-negative integer, not "soon"$/);
});

test.serial('a body over 64 KiB answers 413 with the platform code SIZE_INVALID', async (t) => {
  const answer = await api('POST', '/v1/volumes', { name: 'x'.repeat(70_000) });
  t.is(answer.status, 413);
  t.is(answer.body.errors[0]?.code, 'SIZE_INVALID');
});

test.serial('a malformed image reference answers 400 REFERENCE_INVALID', async (t) => {
  assertError(
    t,
    await api('POST', '/v1/images/pull', { reference: 'Not A/Reference' }),
    'REFERENCE_INVALID',
    /^invalid reference format "Not A\/Reference"/,
  );
});

test.serial('run flags docker refuses answer 400 RUN_OPTIONS_INVALID with docker wording', async (t) => {
  assertError(
    t,
    await api('POST', '/v1/containers', { image, memory: 'lots' }),
    'RUN_OPTIONS_INVALID',
    /^invalid --memory "lots": invalid size: 'lots'$/,
  );
  assertError(
    t,
    await api('POST', '/v1/containers', { image, restart: 'always', autoRemove: true }),
    'RUN_OPTIONS_INVALID',
    /^Conflicting options: --restart and --rm$/,
  );
});

test.serial('an image the agent does not have answers 404 IMAGE_UNKNOWN, for create and for rmi', async (t) => {
  assertError(t, await api('POST', '/v1/containers', { image: 'nosuch/image:1' }), 'IMAGE_UNKNOWN', /^No such image: nosuch\/image:1$/);
  assertError(t, await api('DELETE', '/v1/images?reference=nosuch/image:1'), 'IMAGE_UNKNOWN', /^No such image: nosuch\/image:1$/);
});

test.serial('containers: unknown 404, name taken 409, not running 409, image in use 409', async (t) => {
  assertError(t, await api('GET', '/v1/containers/nosuch'), 'CONTAINER_UNKNOWN', /^No such container: nosuch$/);
  const id = await createContainer({ name: 'twin', command: ['sleep', '30'] });
  assertError(
    t,
    await api('POST', '/v1/containers', { image, name: 'twin' }),
    'NAME_IN_USE',
    /^Conflict\. The container name "\/twin" is already in use by container/,
  );
  assertError(t, await api('POST', `/v1/containers/twin/kill`), 'CONTAINER_NOT_RUNNING', new RegExp(`^Container ${id} is not running$`));
  assertError(t, await api('POST', `/v1/containers/twin/exec`, { command: ['true'] }), 'CONTAINER_NOT_RUNNING', /is not running/);
  assertError(
    t,
    await api('DELETE', `/v1/images?reference=${encodeURIComponent(image)}`),
    'IMAGE_IN_USE',
    /^conflict: unable to remove repository reference/,
  );
  t.is((await api('DELETE', '/v1/containers/twin?force=false')).status, 200);
});

test.serial('an id prefix two containers share answers 400 CONTAINER_AMBIGUOUS', async (t) => {
  // 17 ids over 16 first hex digits: two share one. Bounded by the pigeonhole, not by luck.
  const ids: string[] = [];
  let shared: string | undefined;
  while (shared === undefined && ids.length < 17) {
    const id = await createContainer({ command: ['true'] });
    shared = ids.find((other) => other[0] === id[0])?.[0];
    ids.push(id);
  }
  assertError(t, await api('GET', `/v1/containers/${shared}`), 'CONTAINER_AMBIGUOUS', new RegExp(`^multiple containers match ${shared}$`));
  for (const id of ids) await api('DELETE', `/v1/containers/${id}?force=true`);
});

test.serial('volumes: unknown 404, mounted by a container 409', async (t) => {
  assertError(t, await api('DELETE', '/v1/volumes/nosuch'), 'VOLUME_UNKNOWN', /^get nosuch: no such volume$/);
  t.is((await api('POST', '/v1/volumes', { name: 'kept' })).status, 201);
  await createContainer({ name: 'mounter', command: ['true'], volumes: ['kept:/data'] });
  assertError(t, await api('DELETE', '/v1/volumes/kept'), 'VOLUME_IN_USE', /^remove kept: volume is in use - \[mounter\]$/);
  await api('DELETE', '/v1/containers/mounter?force=true');
  t.is((await api('DELETE', '/v1/volumes/kept')).status, 200);
});

test.serial(
  'a running container: rm without force 409 CONTAINER_RUNNING, stdin without -i 409 STDIN_CLOSED, attach without -t 409 TERMINAL_ABSENT, a second start while one runs 409 CONTAINER_STARTING, cp of a missing path 404 PATH_UNKNOWN, pause twice 409 CONTAINER_PAUSED, unpause of a running one 409 CONTAINER_NOT_PAUSED',
  async (t) => {
    const id = await createContainer({ name: 'runner', command: ['sleep', '60'] });
    const starts = await Promise.all([api('POST', '/v1/containers/runner/start'), api('POST', '/v1/containers/runner/start')]);
    t.deepEqual(starts.map((answer) => answer.status).sort(), [200, 409]);
    assertError(
      t,
      starts.find((answer) => answer.status === 409)!,
      'CONTAINER_STARTING',
      new RegExp(`^Container ${id} is already starting$`),
    );
    assertError(t, await api('DELETE', '/v1/containers/runner?force=false'), 'CONTAINER_RUNNING', /^You cannot remove a running container/);
    assertError(
      t,
      await api('POST', '/v1/containers/runner/stdin', ''),
      'STDIN_CLOSED',
      new RegExp(`^Container ${id} has no open stdin: run it with -i$`),
    );
    assertError(
      t,
      await api('POST', '/v1/containers/runner/attach', undefined, { Connection: 'Upgrade', Upgrade: 'tcp' }),
      'TERMINAL_ABSENT',
      new RegExp(`^Container ${id} has no terminal: attach works with containers run with -t$`),
    );
    assertError(
      t,
      await api('GET', '/v1/containers/runner/archive?path=/nosuch'),
      'PATH_UNKNOWN',
      /^Could not find the file \/nosuch in container$/,
    );
    assertError(
      t,
      await api('POST', '/v1/containers/runner/unpause'),
      'CONTAINER_NOT_PAUSED',
      new RegExp(`^Container ${id} is not paused$`),
    );
    t.is((await api('POST', '/v1/containers/runner/pause')).status, 200);
    assertError(t, await api('POST', '/v1/containers/runner/pause'), 'CONTAINER_PAUSED', new RegExp(`^Container ${id} is already paused$`));
    t.is((await api('DELETE', '/v1/containers/runner?force=true')).status, 200);
  },
);

test.serial('a command that does not exist answers 500 START_FAILED with docker exit code 127 in the detail', async (t) => {
  await createContainer({ name: 'broken', command: ['/bin/nosuch'] });
  const answer = await api('POST', '/v1/containers/broken/start');
  assertError(t, answer, 'START_FAILED', /nosuch/);
  t.deepEqual(answer.body.errors[0]?.detail, { exitCode: 127 });
  await api('DELETE', '/v1/containers/broken?force=true');
});

test.serial('login: wrong credentials 401 LOGIN_DENIED, a registry that does not answer 502 REGISTRY_UNAVAILABLE', async (t) => {
  assertError(
    t,
    await api('POST', '/v1/auth', { registry: proxy.host, username: CREDENTIALS.username, password: 'wrong' }),
    'LOGIN_DENIED',
    /^login to 127\.0\.0\.1:\d+ failed: unauthorized: incorrect username or password$/,
  );
  const closed = `127.0.0.1:${await freePort()}`;
  assertError(
    t,
    await api('POST', '/v1/auth', { registry: closed, ...CREDENTIALS }),
    'REGISTRY_UNAVAILABLE',
    new RegExp(`^login to ${closed} failed: connect ECONNREFUSED`),
  );
  t.is((await api('POST', '/v1/auth', { registry: proxy.host, ...CREDENTIALS })).status, 200);
});

test.serial('an id prefix two images share is IMAGE_AMBIGUOUS (400), not IMAGE_UNKNOWN', async (t) => {
  // Two config digests sharing 4 hex digits cannot be made on purpose through a registry: a store of two records.
  const record = (configDigest: string) => ({ reference: `r/x@${configDigest}`, configDigest }) as ImageRecord;
  const images = {
    list: async () => [record(`sha256:abcd${'1'.repeat(60)}`), record(`sha256:abcd${'2'.repeat(60)}`)],
  } as unknown as ImageStore;
  const error = await t.throwsAsync(matchingImages('abcd', images), { instanceOf: CodedError, message: 'abcd matches several images' });
  t.is(error?.code, 'IMAGE_AMBIGUOUS');
  t.is(error?.status, 400);
  seen.add('IMAGE_AMBIGUOUS');
});

test.serial('run of a missing image: the CLI sees IMAGE_UNKNOWN, says so as docker does and tries a pull', async (t) => {
  const missing = `${registry.host}/codes/missing:v1`;
  const run = await agent.cli(['run', '--rm', missing], { allowFailure: true });
  t.is(run.code, 1);
  t.regex(run.stderr, new RegExp(`^Unable to find image '${missing.replaceAll('.', '\\.')}' locally\n`));
  t.regex(run.stderr, /\nError: manifest codes\/missing:v1: not found/, 'the CLI went on to pull, as it does only on IMAGE_UNKNOWN');
  const rmi = await agent.cli(['rmi', 'nosuch/image:1'], { allowFailure: true });
  t.is(rmi.code, 1);
  t.is(rmi.stderr, 'Error: No such image: nosuch/image:1\n');
});

test.serial('every registered agent code was provoked above, except those no request can reach', (t) => {
  const agentCodes = [...registeredErrorCodes()].filter(([, code]) => code.group === 'agent').map(([key]) => key.slice('agent.'.length));
  t.deepEqual(
    agentCodes.filter((key) => !seen.has(key) && !UNREACHABLE.has(key)),
    [],
  );
});
