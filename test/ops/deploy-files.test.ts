import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../server/config.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// The deploy files are written by hand; these tests keep them in step with the configuration schema and
// the endpoints the registry really serves.
const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));

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

test('the compose file configures the registry with environment variables the registry accepts', async (t) => {
  const compose = parse(await readFile(path.join(DEPLOY, 'compose.yaml'), 'utf8')) as {
    services: { registry: { environment: Record<string, string> }; redis: { command: string[] } };
  };
  const config = loadConfig({ env: compose.services.registry.environment });
  t.is(config.storage.driver, 's3');
  t.is(config.redis.url, 'redis://redis:6379/0');
  t.deepEqual(compose.services.redis.command.slice(1), ['--appendonly', 'yes', '--appendfsync', 'always']);
});
