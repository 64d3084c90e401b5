import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../server/config.js';
import { freePort } from '../helpers/free-port.js';
import { digestOf } from '../../oci/digest.js';
import { makeBlob, pushBlobInChunks, pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// The deploy files are written by hand; these tests keep them in step with the configuration schema and
// the endpoints the registry really serves.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = path.join(REPO_ROOT, 'deploy');

type Manifest = { kind: string; metadata: { name: string; labels?: Record<string, string> }; [key: string]: unknown };

async function kubernetesObjects(): Promise<Manifest[]> {
  const files = ['configmap.yaml', 'deployment.yaml', 'pdb.yaml', 'secret.yaml', 'service.yaml'];
  const texts = await Promise.all(files.map((file) => readFile(path.join(DEPLOY, 'kubernetes', file), 'utf8')));
  return texts.flatMap((text) => parseAllDocuments(text).map((document) => document.toJS() as Manifest));
}

function byKind<T>(objects: Manifest[], kind: string): T {
  const found = objects.find((object) => object.kind === kind);
  if (!found) throw new Error(`no ${kind} in deploy/kubernetes`);
  return found as unknown as T;
}

interface Deployment {
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        containers: Array<{
          ports: Array<{ name: string; containerPort: number }>;
          resources: { requests: Record<string, string> };
          livenessProbe: { httpGet: { path: string; port: string } };
          readinessProbe: { httpGet: { path: string; port: string } };
        }>;
      };
    };
  };
}

test('the Kubernetes ConfigMap and Secret together form a configuration the registry accepts', async (t) => {
  const objects = await kubernetesObjects();
  const configMap = byKind<{ data: Record<string, string> }>(objects, 'ConfigMap');
  const secret = byKind<{ stringData: Record<string, string> }>(objects, 'Secret');
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-deploy-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const file = path.join(directory, 'berth.yml');
  await writeFile(file, configMap.data['berth.yml'] ?? '');
  const config = loadConfig({ file, env: secret.stringData });
  t.is(config.storage.driver, 's3');
  t.truthy(config.redis.url, 'replicas must share an external Redis');
});

test('the Kubernetes Deployment runs two or more replicas with probes, requests and a PDB and Service that select it', async (t) => {
  const objects = await kubernetesObjects();
  const deployment = byKind<Deployment>(objects, 'Deployment');
  const container = deployment.spec.template.spec.containers[0]!;
  t.true(deployment.spec.replicas >= 2);
  t.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);
  t.truthy(container.resources.requests.cpu);
  t.truthy(container.resources.requests.memory);
  t.true(container.ports.some((port) => port.name === container.readinessProbe.httpGet.port));
  const pdb = byKind<{ spec: { selector: { matchLabels: Record<string, string> } } }>(objects, 'PodDisruptionBudget');
  t.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
  const service = byKind<{ spec: { selector: Record<string, string>; ports: Array<{ targetPort: string }> } }>(objects, 'Service');
  t.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);
  t.true(container.ports.some((port) => port.name === service.spec.ports[0]?.targetPort));
});

test('the probe paths in the Deployment are served by a running registry', async (t) => {
  const deployment = byKind<Deployment>(await kubernetesObjects(), 'Deployment');
  const container = deployment.spec.template.spec.containers[0]!;
  const registry = await RegistryProcess.start();
  t.teardown(() => registry.destroy());
  for (const probe of [container.livenessProbe, container.readinessProbe]) {
    t.is((await fetch(`${registry.url}${probe.httpGet.path}`)).status, 200, probe.httpGet.path);
  }
});

interface ComposeFile {
  services: {
    registry: { environment: Record<string, string> };
    redis: { command: string[] };
    s3: { build: { dockerfile: string; target: string }; command: string[] };
  };
}

async function composeFile(): Promise<ComposeFile> {
  return parse(await readFile(path.join(DEPLOY, 'compose.yaml'), 'utf8')) as ComposeFile;
}

test('the compose file configures the registry with environment variables the registry accepts', async (t) => {
  const compose = await composeFile();
  const config = loadConfig({ env: compose.services.registry.environment });
  t.is(config.storage.driver, 's3');
  t.is(config.redis.url, 'redis://redis:6379/0');
  t.deepEqual(compose.services.redis.command.slice(1), ['--appendonly', 'yes', '--appendfsync', 'always']);
});

test('the compose S3 service is a Dockerfile stage with the s3rver version the tests use', async (t) => {
  const { build } = (await composeFile()).services.s3;
  const dockerfile = await readFile(path.join(REPO_ROOT, build.dockerfile), 'utf8');
  t.regex(dockerfile, new RegExp(`^FROM \\S+ AS ${build.target}$`, 'm'));
  const lock = JSON.parse(await readFile(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version: string }>;
  };
  t.is(/s3rver@(\S+)/.exec(dockerfile)?.[1], lock.packages['node_modules/s3rver']?.version);
});

test('the compose registry settings and s3rver command, run here as they are written, serve pushes and pulls', async (t) => {
  const compose = await composeFile();
  const s3 = await startS3rver(t, compose.services.s3.command);
  // The compose file's Redis is a service of its own; an embedded one does here.
  const { BERTH_REDIS__URL: _external, ...environment } = compose.services.registry.environment;
  const registry = await RegistryProcess.start({ env: { ...environment, BERTH_STORAGE__S3__ENDPOINT: s3 } });
  t.teardown(() => registry.destroy());

  const repo = uniqueRepo('compose');
  const image = await pushImage(registry.url, repo, { tag: 'v1' });
  const pulled = await fetch(`${registry.url}/v2/${repo}/manifests/v1`, { headers: { Accept: image.mediaType } });
  t.is(pulled.headers.get('docker-content-digest'), image.digest);
  // Chunked and above S3's 5 MiB part minimum: assembled from parts, which s3rver cannot copy server-side.
  const large = makeBlob(11 * 1024 * 1024);
  t.is((await pushBlobInChunks(registry.url, repo, large, [6 * 1024 * 1024, 5 * 1024 * 1024])).status, 201);
  const blob = Buffer.from(await (await fetch(`${registry.url}/v2/${repo}/blobs/${large.digest}`)).arrayBuffer());
  t.is(digestOf(blob), large.digest);
});

/** Plain s3rver (none of the test helper's additions) with the compose command, on a local port and directory. */
async function startS3rver(t: ExecutionContext, command: string[]): Promise<string> {
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-compose-s3-'));
  const port = await freePort();
  const local: Record<string, string> = { '--directory': directory, '--address': '127.0.0.1', '--port': String(port) };
  const args = command.map((arg, index) => local[command[index - 1] ?? ''] ?? arg);
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(async () => {
    child.kill();
    await rm(directory, { recursive: true, force: true });
  });
  // Read to the end: s3rver prints a stack for each call it does not implement (UploadPartCopy).
  await new Promise<void>((resolve, reject) => {
    let output = '';
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8').on('data', (text: string) => {
        output += text;
        if (output.includes('S3rver listening')) resolve();
      });
    }
    child.once('exit', (code) => reject(new Error(`s3rver exited with code ${code}: ${output}`)));
  });
  return `http://127.0.0.1:${port}`;
}
