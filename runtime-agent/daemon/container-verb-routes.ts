import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { ApiPath } from '../api.js';
import type { ContainerManager } from '../container/container-manager.js';
import { sampleStats, topProcesses } from '../container/container-stats.js';
import { CopyError, copyTarget, extractCopy, packPath } from '../container/copy-archive.js';
import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { AgentErrors } from '../errors.js';
import { ContainerPathError, type ContainerFilesystem, type ContainerPath } from '../container/container-filesystem.js';
import { ContainerVerb, PATH_STAT_HEADER, renameRequestSchema, type PathStat } from '../verbs-api.js';
import { ndjson, readRequest, route, sendJson, type Route } from './http-api.js';

const CONTAINER = `${ApiPath.containers}/:id`;
/** `stats` without --no-stream: one sample a second, as docker. */
const STREAM_INTERVAL_MS = 1000;
/** `--no-stream`: two samples this far apart give the CPU %. */
const SINGLE_INTERVAL_MS = 500;

/** cp (archive), stats, top, rename, pause and unpause of one container. */
export function containerVerbRoutes(manager: ContainerManager, logger: Logger): Route[] {
  return [
    route('GET', `${CONTAINER}/${ContainerVerb.archive}`, async ({ response, params, url }) => {
      const wanted = requiredPath(url);
      await manager.withFilesFrozen(id(params), async (files) => {
        const source = await resolveSource(files, wanted, url.searchParams.get('follow') === 'true');
        const stat: PathStat = {
          name: path.posix.basename(wanted) || '/',
          size: source.stats.size,
          mode: source.stats.mode,
          isDirectory: source.stats.isDirectory(),
          linkTarget: '',
        };
        // A directory given as `dir/.` (or the root) is copied as its content alone, anything else under its own name.
        const base = path.posix.basename(wanted);
        const name = stat.isDirectory && (wanted.endsWith('/.') || base === '') ? '.' : base;
        response.writeHead(200, { 'Content-Type': 'application/x-tar', [PATH_STAT_HEADER]: JSON.stringify(stat) });
        // Awaited: the container stays frozen until the last byte has been read.
        await pipeline(packPath(source.hostPath, name), response).catch((error: Error) => {
          logger.warn({ err: error }, 'cp from a container failed');
          response.destroy(error);
        });
      });
    }),
    route('PUT', `${CONTAINER}/${ContainerVerb.archive}`, async ({ request, response, params, url }) => {
      const wanted = requiredPath(url);
      const sourceName = url.searchParams.get('name') ?? '';
      const source = { name: sourceName, isDirectory: url.searchParams.get('directory') === 'true' };
      const warnings: string[] = [];
      await manager.withFilesFrozen(id(params), async (files) => {
        const destination = await resolvePath(files, wanted, true);
        if (destination.readOnly)
          throw new CodedError(AgentErrors.REQUEST_INVALID, `${wanted} is on a read-only mount or root filesystem: cp cannot write there`);
        try {
          const target = await copyTarget(destination.hostPath, wanted.endsWith('/'), source, wanted);
          await extractCopy(request, target, sourceName === '.', {
            preserveOwnership: url.searchParams.get('copyUIDGID') === 'true',
            warn: (message) => warnings.push(message),
          });
        } catch (error) {
          if (error instanceof CopyError) throw new CodedError(AgentErrors.PATH_UNKNOWN, error.message);
          throw error;
        }
      });
      sendJson(response, 200, { warnings });
    }),
    route('GET', `${CONTAINER}/${ContainerVerb.stats}`, async ({ request, response, params, url }) => {
      const record = manager.get(id(params));
      const stream = url.searchParams.get('stream') !== 'false';
      const first = await sampleStats(record);
      const send = ndjson(response);
      send(first);
      let open = true;
      request.once('close', () => (open = false));
      for (let count = 0; open && (stream || count < 1); count++) {
        await delay(stream ? STREAM_INTERVAL_MS : SINGLE_INTERVAL_MS, undefined, { ref: false });
        if (record.state.status !== 'running') break;
        send(await sampleStats(record));
      }
      response.end();
    }),
    route('GET', `${CONTAINER}/${ContainerVerb.top}`, async ({ response, params, url }) => {
      sendJson(response, 200, await topProcesses(manager.get(id(params)), url.searchParams.getAll('arg')));
    }),
    route('POST', `${CONTAINER}/${ContainerVerb.rename}`, async ({ request, response, params }) => {
      const body = await readRequest(request, renameRequestSchema);
      const record = await manager.rename(id(params), body.name);
      sendJson(response, 200, { id: record.id, name: record.name });
    }),
    route('POST', `${CONTAINER}/${ContainerVerb.pause}`, async ({ response, params }) => {
      sendJson(response, 200, { id: (await manager.pause(id(params))).id });
    }),
    route('POST', `${CONTAINER}/${ContainerVerb.unpause}`, async ({ response, params }) => {
      sendJson(response, 200, { id: (await manager.unpause(id(params))).id });
    }),
  ];
}

function id(params: Record<string, string>): string {
  return decodeURIComponent(params.id ?? '');
}

function requiredPath(url: URL): string {
  const wanted = url.searchParams.get('path');
  if (!wanted) throw new CodedError(AgentErrors.REQUEST_INVALID, 'path is required');
  return wanted;
}

/** A container path resolved in its filesystem view; a tmpfs mount is a clear refusal. */
async function resolvePath(files: ContainerFilesystem, wanted: string, followLast: boolean): Promise<ContainerPath> {
  try {
    return await files.resolve(wanted, followLast);
  } catch (error) {
    if (error instanceof ContainerPathError) throw new CodedError(AgentErrors.REQUEST_INVALID, error.message);
    throw error;
  }
}

/** The source in the container: symlinks on the way resolved in its view; the last one followed only with -L. */
async function resolveSource(files: ContainerFilesystem, wanted: string, follow: boolean) {
  const { hostPath } = await resolvePath(files, wanted, follow);
  const stats = await lstat(hostPath).catch(() => undefined);
  if (!stats) throw new CodedError(AgentErrors.PATH_UNKNOWN, `Could not find the file ${wanted} in container`);
  return { hostPath, stats };
}
