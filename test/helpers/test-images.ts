import { mkdir, mkdtemp, readFile, symlink, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { run } from './exec.js';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { descriptorOf, indexManifest, type Descriptor, type Manifest } from './oci-content.js';

// There is no internet on test machines: every image is built here, from the static busybox binary.
const BUSYBOX = '/bin/busybox';

/**
 * Writes a complete userland into `dir`: /bin/busybox plus a symlink per applet, so `sh`, `cat`, `echo` work.
 * /etc/image-name makes the layer unique to `name`: tests sharing a daemon never share (or mount) its layer.
 */
export async function createBusyboxRootfs(dir: string, name: string): Promise<void> {
  for (const sub of ['bin', 'proc', 'sys', 'dev', 'etc', 'tmp']) await mkdir(path.join(dir, sub), { recursive: true });
  await writeFile(path.join(dir, 'etc', 'image-name'), `${name}\n`);
  await copyFile(BUSYBOX, path.join(dir, 'bin', 'busybox'));
  const { stdout } = await run(BUSYBOX, ['--list']);
  const applets = stdout.split('\n').filter((applet) => applet !== '' && applet !== 'busybox');
  await Promise.all(applets.map((applet) => symlink('busybox', path.join(dir, 'bin', applet))));
}

/**
 * Copies a dynamically linked host program into a root filesystem at the same path, with the shared
 * libraries `ldd` names for it: a glibc program in a busybox image, e.g. perl to make raw syscalls.
 */
export async function copyHostProgram(rootfs: string, program: string): Promise<void> {
  const { stdout } = await run('ldd', [program]);
  const files = [program, ...(stdout.match(/\/\S+/g) ?? [])];
  for (const file of files) {
    await mkdir(path.join(rootfs, path.dirname(file)), { recursive: true });
    await copyFile(file, path.join(rootfs, file));
  }
}

/** A busybox root filesystem as an uncompressed tarball in `workDir`, for `docker import` and `podman import`. */
export async function createBusyboxRootfsTarball(workDir: string, name: string): Promise<string> {
  const rootfs = await mkdtemp(path.join(workDir, 'rootfs-'));
  await createBusyboxRootfs(rootfs, name);
  const tarball = `${rootfs}.tar`;
  await tarDirectory(rootfs, tarball);
  return tarball;
}

/** Reproducible tar: same files, same bytes, so layer digests only change when content does. */
export async function tarDirectory(dir: string, tarball: string): Promise<void> {
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', tarball, '.']);
}

/** Content with its media type: what a manifest or index points at. */
export type Blob = Manifest;

function blobOf(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: digestOf(bytes), size: bytes.length, bytes };
}

function descriptor(blob: Blob, extra: Partial<Descriptor> = {}): Descriptor {
  return descriptorOf(blob, blob.mediaType, extra);
}

export interface Platform {
  os: string;
  architecture: string;
}

/** `oci`: OCI image manifest; `docker`: Docker image manifest v2 schema 2. */
export type ImageFormat = 'oci' | 'docker';

const MEDIA_TYPES = {
  oci: { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layer: MediaType.ociLayerGzip },
  docker: { manifest: MediaType.dockerManifest, config: MediaType.dockerConfig, layer: MediaType.dockerLayer },
} as const;

export interface TestImage {
  platform: Platform;
  manifest: Blob;
  config: Blob;
  layers: Blob[];
}

export interface TestImageSpec {
  format: ImageFormat;
  platform?: Platform;
  /** One entry per layer: file path inside the image → file content. */
  layers: Array<Record<string, string>>;
}

/**
 * A small image (a few text files per layer, no executable) with a real gzip layer, a config whose
 * diff_ids match the layers and a manifest: enough for registries and copy tools, which never run it.
 */
export async function buildTestImage(workDir: string, spec: TestImageSpec): Promise<TestImage> {
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const types = MEDIA_TYPES[spec.format];
  const diffIds: string[] = [];
  const layers: Blob[] = [];
  for (const files of spec.layers) {
    const tar = await tarFiles(workDir, files);
    diffIds.push(digestOf(tar));
    layers.push(blobOf(types.layer, gzipSync(tar)));
  }
  const config = blobOf(
    types.config,
    Buffer.from(
      JSON.stringify({
        created: '2024-01-01T00:00:00Z',
        ...platform,
        config: { Env: ['PATH=/bin'] },
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    ),
  );
  const manifest = blobOf(
    types.manifest,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: types.manifest,
        config: descriptor(config),
        layers: layers.map((layer) => descriptor(layer)),
      }),
    ),
  );
  return { platform, manifest, config, layers };
}

async function tarFiles(workDir: string, files: Record<string, string>): Promise<Buffer> {
  const dir = await mkdtemp(path.join(workDir, 'layer-'));
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  await tarDirectory(dir, `${dir}.tar`);
  return readFile(`${dir}.tar`);
}

/** An OCI image index over images of different platforms (a multi-arch image). */
export function buildOciIndex(images: readonly TestImage[]): Blob {
  return indexManifest({ manifests: images.map((image) => descriptor(image.manifest, { platform: image.platform })) });
}

/** Every blob of an image, manifest first. */
export function imageBlobs(image: TestImage): Blob[] {
  return [image.manifest, image.config, ...image.layers];
}

const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** An OCI image layout (`skopeo copy oci:DIR:TAG ...`) whose index.json tags `root` as `tag`. */
export async function writeOciLayout(dir: string, tag: string, root: Blob, blobs: readonly Blob[]): Promise<void> {
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const blob of [root, ...blobs]) await writeFile(ociBlobPath(dir, blob.digest), blob.bytes);
  const index = { schemaVersion: 2, manifests: [descriptor(root, { annotations: { [REF_NAME_ANNOTATION]: tag } })] };
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
}

/** The descriptor index.json holds for `tag`, and the bytes it points at. */
export async function readOciLayoutRoot(dir: string, tag: string): Promise<Blob> {
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as {
    manifests: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }>;
  };
  const entry = index.manifests.find((manifest) => manifest.annotations?.[REF_NAME_ANNOTATION] === tag);
  if (!entry) throw new Error(`no manifest tagged ${tag} in ${dir}/index.json`);
  return blobOf(entry.mediaType, await readFile(ociBlobPath(dir, entry.digest)));
}

export function ociBlobPath(dir: string, digest: string): string {
  return path.join(dir, 'blobs', ...digest.split(':'));
}

// containers/image's `dir:` transport is the one local format that stores any manifest type verbatim,
// Docker v2 schema 2 included (an OCI layout only holds OCI media types).
const DIR_TRANSPORT_VERSION = 'Directory Transport Version: 1.1\n';

/** A `dir:` image (`skopeo copy dir:DIR ...`): manifest.json plus one file per blob named by its hex digest. */
export async function writeDirImage(dir: string, image: TestImage): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'version'), DIR_TRANSPORT_VERSION);
  await writeFile(path.join(dir, 'manifest.json'), image.manifest.bytes);
  for (const blob of [image.config, ...image.layers]) await writeFile(dirBlobPath(dir, blob.digest), blob.bytes);
}

export function dirBlobPath(dir: string, digest: string): string {
  return path.join(dir, digest.replace(/^sha256:/, ''));
}
