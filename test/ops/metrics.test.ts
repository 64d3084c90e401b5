import test from 'ava';
import { request } from '../helpers/http-client.js';
import { pushImage, uniqueRepo } from '../helpers/oci-content.js';
import { parsePrometheus, scrapeMetrics, total, type Sample } from '../helpers/prometheus.js';
import { sharedRegistry } from '../helpers/shared-registry.js';

const registry = sharedRegistry();

function scrape(): Promise<Sample[]> {
  return scrapeMetrics(registry.url);
}

const MANIFEST_ROUTE = '/v2/*name/manifests/:reference';

test('/metrics is Prometheus text with the registry, storage, Redis and process metrics', async (t) => {
  const response = await request(registry.url, '/metrics');
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const names = new Set(parsePrometheus(text).map((sample) => sample.name));
  for (const name of ['process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'berth_uploads_active']) {
    t.true(names.has(name), `${name} is exported`);
  }
  // Labelled metrics have no samples until something happened; their declarations are there from the start.
  for (const declared of [
    'berth_http_requests_total',
    'berth_http_request_duration_seconds',
    'berth_storage_operation_duration_seconds',
    'berth_redis_command_duration_seconds',
    'berth_gc_runs_total',
    'berth_webhook_deliveries_total',
    'berth_http_received_bytes_total',
  ]) {
    t.true(text.includes(`# TYPE ${declared} `), `${declared} is declared`);
  }
});

test('request, byte, storage and Redis counters move after a push and a pull', async (t) => {
  const before = await scrape();
  const repo = uniqueRepo('metrics');
  const image = await pushImage(registry.url, repo, { tag: 'v1', layers: 2 });
  const pulled = await request(registry.url, `/v2/${repo}/manifests/v1`, { headers: { Accept: image.mediaType } });
  t.is(pulled.status, 200);
  await pulled.arrayBuffer();
  const after = await scrape();

  const moved = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);
  t.is(moved('berth_http_requests_total', { method: 'PUT', route: MANIFEST_ROUTE, status: '201' }), 1);
  t.is(moved('berth_http_requests_total', { method: 'GET', route: MANIFEST_ROUTE, status: '200' }), 1);
  t.is(moved('berth_http_request_duration_seconds_count', { method: 'PUT', route: MANIFEST_ROUTE }), 1);
  t.true(moved('berth_http_received_bytes_total', { route: MANIFEST_ROUTE }) >= image.size, 'the manifest bytes were counted in');
  t.true(moved('berth_http_sent_bytes_total', { route: MANIFEST_ROUTE }) >= image.size, 'the manifest bytes were counted out');
  t.is(moved('berth_storage_operation_duration_seconds_count', { store: 'filesystem', action: 'commit_upload', outcome: 'ok' }), 3);
  t.true(moved('berth_redis_command_duration_seconds_count') > 0);
});
