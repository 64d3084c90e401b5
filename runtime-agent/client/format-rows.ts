import type { ContainerSummary, ImageSummary } from '../api.js';
import { shortDigest } from '../../oci/digest.js';
import { compileFormat, type OutputFormat } from './format-template.js';
import { portText, statusText } from './containers-table.js';
import { humanAge, humanSince, humanSize } from './human-format.js';

/** The fields `ps --format` and `images --format` offer, named and worded as docker's. */

export const CONTAINER_HEADERS = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Names: 'NAMES',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  Networks: 'NETWORKS',
  Size: 'SIZE',
};

export const IMAGE_HEADERS = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
};

export function containerRow(
  container: ContainerSummary,
  noTrunc: boolean,
  now = Date.now(),
): Record<keyof typeof CONTAINER_HEADERS, string> {
  return {
    ID: noTrunc ? container.id : container.id.slice(0, 12),
    Image: container.image,
    Command: `"${container.command}"`,
    CreatedAt: container.createdAt,
    RunningFor: humanSince(container.createdAt, now) === undefined ? '' : humanAge(container.createdAt, now),
    Ports: container.ports.map(portText).join(', '),
    State: container.paused ? 'paused' : container.status,
    Status: statusText(container, now),
    Names: container.name,
    Labels: '',
    Mounts: '',
    Networks: '',
    Size: '',
  };
}

export function imageRow(image: ImageSummary, noTrunc: boolean, now = Date.now()): Record<keyof typeof IMAGE_HEADERS, string> {
  return {
    ID: noTrunc ? image.id : shortDigest(image.id),
    Repository: image.repository,
    Tag: image.tag ?? '<none>',
    Digest: image.digest,
    CreatedSince: humanAge(image.created, now),
    CreatedAt: image.created ?? '',
    Size: humanSize(image.size),
  };
}

/** A `--format` for a listing, or undefined for the default table. */
export function listFormat(format: string | undefined, headers: Record<string, string>): OutputFormat | undefined {
  return format === undefined || format === '' ? undefined : compileFormat(format, headers);
}

/** `inspect`'s output: the documents as indented JSON, or each through `--format`. */
export function inspectOutput(documents: readonly unknown[], format: string | undefined): string {
  const compiled = listFormat(format, {});
  return compiled ? compiled.render(documents) : JSON.stringify(documents, null, 4);
}
