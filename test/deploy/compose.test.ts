import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ComposeError, validateCompose } from '../../server/deploy/compose/compose.js';
import { interpolateValue } from '../../server/deploy/compose/interpolate.js';
import { loadComposeFile, resolveCompose } from '../../server/deploy/compose/load-compose.js';
import { parseBytes, parseDuration } from '../../server/deploy/compose/units.js';

const refusal = (document: unknown): string[] => {
  try {
    validateCompose(document);
  } catch (error) {
    if (error instanceof ComposeError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
};

const refusalOfYaml = async (text: string, variables: Record<string, string> = {}): Promise<string[]> => {
  try {
    validateCompose(await resolveCompose(text, variables, tmpdir()));
  } catch (error) {
    if (error instanceof ComposeError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
};

test('compose durations and byte values read as the specification writes them', (t) => {
  t.is(parseDuration('1m30s'), 90_000);
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('1.5h'), 5_400_000);
  t.is(parseDuration('2h32m'), 9_120_000);
  t.is(parseDuration('10us'), 0);
  t.is(parseDuration('0'), 0);
  for (const bad of ['10', '1x', 's', '1m 30s', '', '-1s']) t.is(parseDuration(bad), undefined, bad);
  t.is(parseBytes('512m'), 512 * 1024 ** 2);
  t.is(parseBytes('1gb'), 1024 ** 3);
  t.is(parseBytes(2048), 2048);
  t.is(parseBytes('lots'), undefined);
});

test('interpolation follows compose: defaults, required values, alternatives and $$', (t) => {
  const env = { SET: 'yes', EMPTY: '' };
  t.is(interpolateValue('${SET}-$SET', env, 'x'), 'yes-yes');
  t.is(interpolateValue('${EMPTY:-fallback}|${EMPTY-fallback}|${UNSET-fallback}', env, 'x'), 'fallback||fallback');
  t.is(interpolateValue('${UNSET:-${SET}}', env, 'x'), 'yes');
  t.is(interpolateValue('${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}', env, 'x'), 'alt||alt');
  t.is(interpolateValue('cost: $$5', env, 'x'), 'cost: $5');
  t.throws(() => interpolateValue('${UNSET:?needs a value}', env, 'services.web.image'), {
    message: /services\.web\.image.*UNSET.*needs a value/,
  });
  t.throws(() => interpolateValue('${SET', env, 'x'), { message: /unterminated/ });
});

test('a full file is read with the compose and Swarm meaning of every key, and Berth defaults', async (t) => {
  const document = await resolveCompose(
    `
name: shop
x-common: &common
  labels: [team=shop]
services:
  web:
    <<: *common
    image: 127.0.0.1:5000/shop/web:\${TAG:-main}
    command: nginx -g "daemon off;"
    entrypoint: ["/docker-entrypoint.sh"]
    environment:
      - MODE=prod
      - FROM_SHELL
    ports:
      - "8080:80"
      - "127.0.0.1:9000-9001:9000-9001/udp"
      - target: 443
        published: "8443"
        protocol: tcp
        mode: host
    volumes:
      - data:/var/lib/data:ro
      - ./static:/static
      - type: tmpfs
        target: /cache
    healthcheck:
      test: curl -f http://localhost/
      interval: 2s
      timeout: 1s
      retries: 2
      start_period: 10s
    stop_signal: SIGQUIT
    stop_grace_period: 1m30s
    user: "101"
    working_dir: /srv
    read_only: true
    tmpfs: /run
    deploy:
      replicas: 3
      placement:
        constraints: [node.labels.region == eu, "node.hostname!=old"]
        max_replicas_per_node: 1
      resources:
        limits: { cpus: "0.5", memory: 256M, pids: 100 }
      restart_policy: { condition: on-failure, delay: 2s, max_attempts: 3, window: 1m }
      update_config: { parallelism: 2, delay: 5s, monitor: 20s, max_failure_ratio: 0.3 }
    x-berth:
      track: main
      healthy_deadline: 1m
      checks:
        - http: { port: 80, path: /healthz }
          interval: 1s
          timeout: 1s
        - tcp: { port: 443 }
          interval: 2s
          timeout: 1s
    x-note: free for anyone
  worker:
    image: shop/worker@sha256:${'0'.repeat(64)}
    deploy:
      mode: global
      update_config: { order: stop-first, failure_action: pause }
volumes:
  data: {}
`,
    { FROM_SHELL: 'shell-value' },
    tmpdir(),
  );
  const { services } = validateCompose(document);
  const web = services.web!;
  t.like(web, {
    repository: 'shop/web',
    tag: 'main',
    digest: null,
    user: '101',
    workingDir: '/srv',
    readOnly: true,
    stopSignal: 'SIGQUIT',
  });
  t.deepEqual(web.command, ['nginx', '-g', 'daemon off;']);
  t.deepEqual(web.entrypoint, ['/docker-entrypoint.sh']);
  t.deepEqual(web.environment, { MODE: 'prod', FROM_SHELL: 'shell-value' });
  t.deepEqual(web.labels, { team: 'shop' });
  t.deepEqual(web.ports, [
    { target: 80, published: 8080, hostIp: null, protocol: 'tcp' },
    { target: 9000, published: 9000, hostIp: '127.0.0.1', protocol: 'udp' },
    { target: 9001, published: 9001, hostIp: '127.0.0.1', protocol: 'udp' },
    { target: 443, published: 8443, hostIp: null, protocol: 'tcp' },
  ]);
  t.deepEqual(web.volumes, [
    { type: 'volume', source: 'data', target: '/var/lib/data', readOnly: true },
    { type: 'bind', source: './static', target: '/static', readOnly: false },
    { type: 'tmpfs', source: null, target: '/cache', readOnly: false },
  ]);
  t.deepEqual(web.healthcheck, {
    test: ['CMD-SHELL', 'curl -f http://localhost/'],
    intervalMs: 2000,
    timeoutMs: 1000,
    retries: 2,
    startPeriodMs: 10_000,
    startIntervalMs: 5000,
  });
  t.is(web.stopGracePeriodMs, 90_000);
  t.deepEqual(web.tmpfs, ['/run']);
  t.deepEqual(web.deploy.placement, {
    constraints: [
      { field: { kind: 'label', name: 'region' }, operator: '==', value: 'eu' },
      { field: { kind: 'hostname' }, operator: '!=', value: 'old' },
    ],
    maxReplicasPerNode: 1,
  });
  t.deepEqual(web.deploy.limits, { cpus: 0.5, memoryBytes: 256 * 1024 ** 2, pids: 100 });
  t.deepEqual(web.deploy.restartPolicy, { condition: 'on-failure', delayMs: 2000, maxAttempts: 3, windowMs: 60_000 });
  t.deepEqual(web.deploy.update, {
    parallelism: 2,
    delayMs: 5000,
    failureAction: 'rollback',
    monitorMs: 20_000,
    maxFailureRatio: 0.3,
    order: 'start-first',
  });
  t.is(web.deploy.rollback.failureAction, 'pause');
  t.like(web.berth, { track: 'main', healthyDeadlineMs: 60_000, progressDeadlineMs: 600_000 });
  t.deepEqual(
    web.berth.checks.map((check) => ({ ...check, timing: check.timing.intervalMs })),
    [
      { kind: 'http', port: 80, path: '/healthz', timing: 1000 },
      { kind: 'tcp', port: 443, timing: 2000 },
    ],
  );
  const worker = services.worker!;
  t.like(worker, { repository: 'shop/worker', tag: null, digest: `sha256:${'0'.repeat(64)}` });
  t.like(worker.deploy, { mode: 'global', replicas: 0 });
  t.like(worker.deploy.update, { order: 'stop-first', failureAction: 'pause', parallelism: 1, monitorMs: 5000 });
});

test('an unsupported key is refused with its full path, and every problem is reported at once', async (t) => {
  const problems = await refusalOfYaml(`
services:
  web:
    image: shop/web
    container_name: web
    deploy:
      update_config:
        paralelism: 2
      endpoint_mode: vip
networks:
  front: {}
`);
  t.deepEqual(problems.sort(), [
    'networks: is not a supported key',
    'services.web.container_name: is not a supported key',
    'services.web.deploy.endpoint_mode: is not a supported key',
    'services.web.deploy.update_config.paralelism: is not a supported key',
  ]);
});

test('bad values are refused naming their key', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['stop_grace_period: 10 seconds', /^services\.web\.stop_grace_period: not a duration/],
    ['healthcheck: { test: [CMD, "true"], interval: 1x }', /^services\.web\.healthcheck\.interval: not a duration/],
    ['deploy: { update_config: { delay: soon } }', /^services\.web\.deploy\.update_config\.delay: not a duration/],
    ['deploy: { update_config: { failure_action: explode } }', /^services\.web\.deploy\.update_config\.failure_action:/],
    ['deploy: { rollback_config: { failure_action: rollback } }', /^services\.web\.deploy\.rollback_config\.failure_action:/],
    ['deploy: { update_config: { order: sideways } }', /^services\.web\.deploy\.update_config\.order:/],
    ['deploy: { update_config: { max_failure_ratio: 2 } }', /^services\.web\.deploy\.update_config\.max_failure_ratio:/],
    ['deploy: { mode: daemonset }', /^services\.web\.deploy\.mode:/],
    ['deploy: { replicas: -1 }', /^services\.web\.deploy\.replicas:/],
    [
      'deploy: { placement: { constraints: [node.role == manager] } }',
      /^services\.web\.deploy\.placement\.constraints\[0\]: unsupported constraint/,
    ],
    [
      'deploy: { placement: { constraints: ["node.labels.zone"] } }',
      /^services\.web\.deploy\.placement\.constraints\[0\]: unsupported constraint/,
    ],
    ['deploy: { mode: global, replicas: 2 }', /^services\.web\.deploy\.replicas: replicas can only be used with mode: replicated/],
    ['deploy: { resources: { limits: { memory: lots } } }', /^services\.web\.deploy\.resources\.limits\.memory: not a byte value/],
    ['deploy: { restart_policy: { condition: sometimes } }', /^services\.web\.deploy\.restart_policy\.condition:/],
    ['ports: ["99999:80"]', /^services\.web\.ports\[0\]: invalid port/],
    ['ports: ["80-79:80-79"]', /^services\.web\.ports\[0\]: invalid port/],
    ['ports: [{ target: 80, published: 8080, mode: ingress }]', /^services\.web\.ports\[0\]\.mode:/],
    ['volumes: ["relative"]', /^services\.web\.volumes\[0\]: invalid volume/],
    ['volumes: ["undeclared:/data"]', /^services\.web\.volumes\[0\]: volume undeclared is not declared/],
    ['healthcheck: { test: [PING] }', /^services\.web\.healthcheck\.test\[0\]:/],
    ['command: "echo \'unbalanced"', /^services\.web\.command: unbalanced quotes/],
    ['working_dir: relative', /^services\.web\.working_dir:/],
    ['x-berth: { track: "bad tag!" }', /^services\.web\.x-berth\.track: must be a tag/],
    [
      'x-berth: { checks: [{ http: { port: 80 }, tcp: { port: 80 } }] }',
      /^services\.web\.x-berth\.checks\[0\]: a check is either http: or tcp:/,
    ],
    ['x-berth: { healthy_deadline: 10m, progress_deadline: 1m }', /^services\.web\.x-berth\.progress_deadline:/],
    ['x-berth: { surprise: 1 }', /^services\.web\.x-berth\.surprise: is not a supported key/],
  ];
  for (const [line, expected] of cases) {
    const problems = await refusalOfYaml(`services:\n  web:\n    image: shop/web\n    ${line}\n`);
    t.is(problems.length, 1, `${line}: ${problems.join('; ')}`);
    t.regex(problems[0] ?? '', expected, line);
  }
});

test('a monitor shorter than the health checks can take to see a failure is refused; unset, it waits long enough', (t) => {
  const service = (extra: Record<string, unknown>) => ({
    services: { web: { image: 'shop/web', healthcheck: { test: ['CMD', 'true'], interval: '10s', timeout: '2s', retries: 3 }, ...extra } },
  });
  t.deepEqual(refusal(service({ deploy: { update_config: { monitor: '5s' } } })), [
    'services.web.deploy.update_config.monitor: 5000 ms is shorter than the health checks can take to report a failure (36000 ms: retries × (interval + timeout))',
  ]);
  t.deepEqual(refusal(service({ deploy: { update_config: { monitor: '36s' } } })), []);
  t.is(validateCompose(service({})).services.web!.deploy.update.monitorMs, 36_000);
  const probeOnly = {
    services: { web: { image: 'shop/web', 'x-berth': { checks: [{ tcp: { port: 80 }, interval: '1s', timeout: '1s', retries: 5 }] } } },
  };
  t.is(validateCompose(probeOnly).services.web!.deploy.update.monitorMs, 10_000);
  const disabled = {
    services: { web: { image: 'shop/web', healthcheck: { disable: true }, deploy: { update_config: { monitor: '1s' } } } },
  };
  t.deepEqual(refusal(disabled), []);
  t.deepEqual(validateCompose(disabled).services.web!.healthcheck?.test, ['NONE']);
});

test('images, tracked tags and published ports are checked across the stack', (t) => {
  t.regex(refusal({ services: { web: { image: 'Shop/Web' } } })[0] ?? '', /^services\.web\.image: invalid image reference/);
  t.regex(
    refusal({ services: { web: { image: `shop/web@sha256:${'a'.repeat(64)}`, 'x-berth': { track: 'main' } } } })[0] ?? '',
    /x-berth\.track: the image pins a digest/,
  );
  t.regex(
    refusal({ services: { web: { image: 'shop/web:v1', 'x-berth': { track: 'main' } } } })[0] ?? '',
    /x-berth\.track: follows tag main but the image names tag v1/,
  );
  t.is(validateCompose({ services: { web: { image: 'shop/web', 'x-berth': { track: 'main' } } } }).services.web!.tag, 'main');
  t.deepEqual(refusal({ services: { a: { image: 'x/a', ports: ['8080:80'] }, b: { image: 'x/b', ports: ['8080:81'] } } }), [
    'services.b.ports[0]: port 8080/tcp is already published by services.a.ports[0]',
  ]);
  t.deepEqual(refusal({ services: { a: { image: 'x/a', ports: ['8080:80'] }, b: { image: 'x/b', ports: ['8080:81/udp'] } } }), []);
  t.deepEqual(refusal({ services: {} }), ['services: a stack needs at least one service']);
  t.regex(refusal({ services: { Web: { image: 'x/a' } } })[0] ?? '', /^services\.Web:/);
});

test('the CLI side reads env files relative to the compose file, under the service environment', async (t) => {
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-compose-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  await writeFile(path.join(directory, 'common.env'), '# shared\nexport LEVEL=info\nNAME="quoted value"\nOVERRIDDEN=from-file\n');
  await writeFile(
    path.join(directory, 'compose.yaml'),
    'services:\n  web:\n    image: shop/web:${TAG}\n    env_file: [common.env, { path: missing.env, required: false }]\n    environment: { OVERRIDDEN: mine }\n',
  );
  const { stack, document } = await loadComposeFile(path.join(directory, 'compose.yaml'), { TAG: 'v2' });
  t.is(stack.services.web!.tag, 'v2');
  t.deepEqual(stack.services.web!.environment, { LEVEL: 'info', NAME: 'quoted value', OVERRIDDEN: 'mine' });
  t.false('env_file' in (document.services as Record<string, Record<string, unknown>>).web!);
  await writeFile(path.join(directory, 'compose.yaml'), 'services:\n  web:\n    image: shop/web\n    env_file: absent.env\n');
  const error = await t.throwsAsync(loadComposeFile(path.join(directory, 'compose.yaml'), {}), { instanceOf: ComposeError });
  t.regex(error.message, /^services\.web\.env_file\[0\]: cannot read .*absent\.env: ENOENT/);
});

test('YAML errors and duplicate keys are refused before anything else', async (t) => {
  t.regex((await refusalOfYaml('services:\n  web:\n    image: a\n    image: b\n'))[0] ?? '', /YAML: .*[Dd]uplicate|unique/);
  t.regex((await refusalOfYaml('services: [\n'))[0] ?? '', /YAML/);
  t.regex(
    (await refusalOfYaml('services:\n  web:\n    image: ${NOPE:?set NOPE}\n'))[0] ?? '',
    /services\.web\.image: required variable NOPE/,
  );
});
