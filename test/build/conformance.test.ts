import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import {
  buildahBuild,
  buildah,
  buildFlags,
  concurrencyLimit,
  dockerBuild,
  type BuildOutcome,
  type BuildRequest,
} from '../helpers/docker-build.js';
import { DockerWorkbench } from '../helpers/docker-workbench.js';
import { DockerDaemon } from '../helpers/dockerd.js';
import { removeDirWithMounts, run } from '../helpers/exec.js';
import {
  compareConfigs,
  compareFilesystems,
  describeDifference,
  flattenImage,
  imageConfigFields,
  openContentStore,
  type FilesystemEntry,
  type ImageConfigFields,
  type ImageSource,
} from '../helpers/image-filesystem.js';
import { PodmanEnvironment } from '../helpers/podman.js';
import { RegistryProcess } from '../helpers/registry-process.js';

/**
 * Every fixture under test/build/fixtures is one Dockerfile behaviour. Berth's builder must make the image
 * docker's BuildKit makes (its legacy builder where BuildKit lacks the feature): same runtime config fields,
 * same flattened filesystem. Until `berth-agent build` exists those comparisons are skipped by name, and the
 * harness proves itself by setting docker's two builders and buildah against each other on the same fixtures.
 * A case whose case.json names a `berthGap` is a known difference, titled as one, and its test checks that
 * Berth still differs, so it fails (asking for the entry to go) once the builder is fixed.
 */

const FIXTURES = fileURLToPath(new URL('../../../test/build/fixtures/', import.meta.url));
// Two cores shared with other test files: more builds at once only queue on the CPU.
const BUILD_CONCURRENCY = 2;
// The cross-checks hold docker's two builders and buildah to each other: they prove the harness and the fixtures,
// not Berth, and they triple the builds, so CI runs Berth against the reference only. Set to 1 to run them too.
const CROSS_CHECK = process.env.BERTH_CONFORMANCE_CROSSCHECK === '1';
const CROSS_CHECK_SKIPPED = ' — SKIPPED: a cross-check of the reference builders, run with BERTH_CONFORMANCE_CROSSCHECK=1';
const BASE_IMAGE = 'berth.test/busybox:base';

const builderName = z.enum(['legacy', 'buildkit', 'buildah']);
type Builder = z.infer<typeof builderName>;

/** test/build/fixtures/<case>/case.json, all optional: how to build the case and which builders disagree. */
const caseFile = z
  .object({
    dockerfile: z.string().default('Dockerfile'),
    buildArgs: z.record(z.string(), z.string()).default({}),
    target: z.string().optional(),
    /** The builder Berth is held to. */
    reference: z.enum(['legacy', 'buildkit']).default('buildkit'),
    /** A Dockerfile with the same outcome that docker and buildah can build, for a feature none of them has here. */
    equivalent: z.string().optional(),
    /** Builders that must make the reference's image; by default docker's other builder. */
    crossCheck: z.array(builderName).optional(),
    /** Builders whose image differs from the reference's, and why (the test checks they still do). */
    differs: z.partialRecord(builderName, z.string()).default({}),
    /** Where `berth-agent build` is known still to differ from the reference, and why (the test checks it still does). */
    berthGap: z.string().optional(),
  })
  .strict();

interface BuildCase extends Omit<z.infer<typeof caseFile>, 'crossCheck'> {
  name: string;
  dir: string;
  crossCheck: Builder[];
}

function loadCases(): BuildCase[] {
  return readdirSync(FIXTURES, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => {
      const dir = path.join(FIXTURES, entry.name);
      const file = path.join(dir, 'case.json');
      const parsed = caseFile.safeParse(existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {});
      if (!parsed.success) throw new Error(`${file}: ${z.prettifyError(parsed.error)}`);
      const { reference, differs } = parsed.data;
      const crossCheck = parsed.data.crossCheck ?? [reference === 'buildkit' ? 'legacy' : 'buildkit'];
      const clash = crossCheck.find((builder) => builder === reference || differs[builder] !== undefined);
      if (clash) throw new Error(`${file}: ${clash} cannot both cross-check and be the reference or differ`);
      return { ...parsed.data, crossCheck, name: entry.name, dir };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

const cases = loadCases();

interface ImageView {
  filesystem: FilesystemEntry[];
  config: ImageConfigFields;
  /** Outside `config` in the document, but what MAINTAINER sets. */
  author: string | null;
}

async function viewOfImage(image: ImageSource): Promise<ImageView> {
  const author = image.config['author'];
  return { filesystem: await flattenImage(image), config: imageConfigFields(image), author: typeof author === 'string' ? author : null };
}

interface Environment {
  workDir: string;
  docker: DockerDaemon;
  podman: PodmanEnvironment | undefined;
  /** Undefined only until test.before has started it. */
  berth: BerthBuilder | undefined;
}

let environment: Environment | undefined;
const limit = concurrencyLimit(BUILD_CONCURRENCY);
const builds = new Map<string, Promise<BuildOutcome>>();
const views = new Map<string, Promise<ImageView>>();

test.before(async () => {
  const workDir = await mkdtemp(path.join(tmpdir(), 'berth-buildconf-'));
  const [docker, podman] = await Promise.all([DockerDaemon.start(), CROSS_CHECK ? PodmanEnvironment.create() : undefined]);
  environment = { workDir, docker, podman, berth: undefined };
  const imported = await new DockerWorkbench(docker, workDir).importBusybox('buildconf');
  await docker.docker(['tag', imported, BASE_IMAGE]);
  const baseArchive = path.join(workDir, 'base.tar');
  await docker.docker(['save', '--output', baseArchive, BASE_IMAGE]);
  if (podman) {
    const pulled = await buildah(podman, ['pull', '--quiet', `docker-archive:${baseArchive}`]);
    if (pulled.code !== 0) throw new Error(`buildah pull of the base image failed:\n${pulled.stderr}`);
  }
  environment.berth = await BerthBuilder.start(baseArchive, workDir);
});

test.after.always(async () => {
  if (!environment) return;
  await environment.berth?.destroy();
  await Promise.all([environment.docker.stop(), environment.podman?.destroy()]);
  await removeDirWithMounts(environment.workDir);
});

function request(buildCase: BuildCase, dockerfile: string, tag: string, base: string): BuildRequest {
  return { context: buildCase.dir, dockerfile, tag, target: buildCase.target, buildArgs: { BASE: base, ...buildCase.buildArgs } };
}

/** One build per case, builder and Dockerfile, whichever test asks first; at most BUILD_CONCURRENCY at once. */
function buildWith(buildCase: BuildCase, builder: Builder, dockerfile: string): Promise<BuildOutcome> {
  const key = `${buildCase.name}/${builder}/${dockerfile}`;
  let build = builds.get(key);
  if (!build) {
    const env = environment!;
    const tag = `berth.test/${buildCase.name}-${builder}:${dockerfile.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
    const buildRequest = request(buildCase, dockerfile, tag, BASE_IMAGE);
    build = limit(() =>
      builder === 'buildah'
        ? buildahBuild(env.podman!, buildRequest, env.workDir)
        : dockerBuild(env.docker, builder, buildRequest, env.workDir),
    );
    builds.set(key, build);
  }
  return build;
}

async function viewOf(key: string, outcome: Promise<BuildOutcome>): Promise<ImageView> {
  let view = views.get(key);
  if (!view) {
    view = outcome.then(async (built) => {
      if (!built.image) throw new Error(`${key}: the build failed:\n${tail(built.output)}`);
      return viewOfImage(await built.image());
    });
    views.set(key, view);
  }
  return view;
}

/** The Dockerfile docker and buildah build for a case: its own, or the equivalent one when they lack the feature. */
function referenceDockerfile(buildCase: BuildCase): string {
  return buildCase.equivalent ?? buildCase.dockerfile;
}

function referenceView(buildCase: BuildCase, builder: Builder): Promise<ImageView> {
  const dockerfile = referenceDockerfile(buildCase);
  return viewOf(`${buildCase.name}/${builder}/${dockerfile}`, buildWith(buildCase, builder, dockerfile));
}

function differences(left: ImageView, right: ImageView, names: readonly [string, string]): string[] {
  const author = left.author === right.author ? [] : [describeDifference('config', 'author', left.author, right.author, names)];
  return [...author, ...compareConfigs(left.config, right.config, names), ...compareFilesystems(left.filesystem, right.filesystem, names)];
}

function tail(output: string, lines = 15): string {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(-lines)
    .join('\n');
}

const ALL_BUILDERS: readonly Builder[] = ['legacy', 'buildkit', 'buildah'];

for (const buildCase of cases) {
  const reference = buildCase.reference;
  const crossTest = CROSS_CHECK ? test : (title: string) => test.skip(`${title}${CROSS_CHECK_SKIPPED}`, (t: ExecutionContext) => t.fail());
  for (const other of buildCase.crossCheck) {
    crossTest(`${buildCase.name}: ${reference} and ${other} build the same image`, async (t) => {
      const [expected, actual] = await Promise.all([referenceView(buildCase, reference), referenceView(buildCase, other)]);
      t.true(expected.filesystem.length > 0, 'the image has files');
      t.deepEqual(differences(expected, actual, [reference, other]), []);
    });
  }

  for (const [builder, reason] of Object.entries(buildCase.differs) as Array<[Builder, string]>) {
    crossTest(`${buildCase.name}: ${builder} differs from ${reference} (${reason})`, async (t) => {
      const dockerfile = referenceDockerfile(buildCase);
      const outcome = await buildWith(buildCase, builder, dockerfile);
      if (!outcome.image) {
        t.log(`${builder} rejects it:\n${tail(outcome.output, 3)}`);
        return t.pass();
      }
      const found = differences(await referenceView(buildCase, reference), await referenceView(buildCase, builder), [reference, builder]);
      t.log(found.join('\n'));
      t.not(found.length, 0, `${builder} now builds the same image: drop it from differs in ${buildCase.name}/case.json`);
    });
  }

  if (buildCase.equivalent !== undefined) {
    crossTest(`${buildCase.name}: no reference builder here supports it, so Berth is held to ${buildCase.equivalent}`, async (t) => {
      const outcomes = await Promise.all(ALL_BUILDERS.map((builder) => buildWith(buildCase, builder, buildCase.dockerfile)));
      for (const [index, outcome] of outcomes.entries()) {
        t.log(`${ALL_BUILDERS[index]}: ${tail(outcome.output, 1)}`);
        t.false(outcome.succeeded, `${ALL_BUILDERS[index]} built ${buildCase.dockerfile}: compare against it instead`);
      }
    });
  }

  const berthTitle =
    buildCase.berthGap === undefined
      ? `${buildCase.name}: berth-agent build makes the same image as ${reference}`
      : `${buildCase.name}: berth-agent build still differs from ${reference} (known gap: ${buildCase.berthGap})`;
  test(berthTitle, async (t) => {
    const expected = await referenceView(buildCase, reference);
    const built = await berthBuild(buildCase);
    if (buildCase.berthGap === undefined) {
      if (built instanceof Error) throw built;
      t.deepEqual(differences(expected, built, [reference, 'berth']), []);
      return;
    }
    const found = built instanceof Error ? [built.message] : differences(expected, built, [reference, 'berth']);
    t.log(found.join('\n'));
    t.not(found.length, 0, `berth-agent build now makes the same image: drop berthGap from ${buildCase.name}/case.json`);
  });
}

/** Berth's image for a case, or the error its build ended with; builds share the reference builders' limit. */
function berthBuild(buildCase: BuildCase): Promise<ImageView | Error> {
  return limit(() => environment!.berth!.build(buildCase)).catch((error: unknown) =>
    error instanceof Error ? error : new Error(String(error)),
  );
}

test('every fixture directory has a Dockerfile and every case file names files that exist', (t) => {
  t.true(cases.length >= 40, `${cases.length} fixtures`);
  for (const buildCase of cases) {
    for (const file of [buildCase.dockerfile, buildCase.equivalent].filter((name) => name !== undefined)) {
      t.true(existsSync(path.join(buildCase.dir, file)), `${buildCase.name}/${file}`);
    }
  }
});

/** `berth-agent build` on an agent whose base image comes from a Berth registry, read back from its content store. */
class BerthBuilder {
  private constructor(
    private readonly registry: RegistryProcess,
    private readonly agent: AgentDaemon,
    private readonly workDir: string,
  ) {}

  static async start(baseArchive: string, workDir: string): Promise<BerthBuilder> {
    const registry = await RegistryProcess.start();
    const agent = await AgentDaemon.start(['--insecure-registry', registry.host]);
    await run('skopeo', [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `docker-archive:${baseArchive}`,
      `docker://${registry.host}/berth/busybox:base`,
    ]);
    return new BerthBuilder(registry, agent, workDir);
  }

  async build(buildCase: BuildCase): Promise<ImageView> {
    const iidFile = path.join(await mkdtemp(path.join(this.workDir, 'berth-')), 'iid');
    const tag = `berth.test/${buildCase.name}:berth`;
    const flags = buildFlags(request(buildCase, buildCase.dockerfile, tag, `${this.registry.host}/berth/busybox:base`));
    const result = await this.agent.cli(['build', '--iidfile', iidFile, ...flags], { allowFailure: true });
    if (result.code !== 0) throw new Error(`berth-agent build failed (${result.code}):\n${tail(result.stdout + result.stderr)}`);
    const manifestDigest = await this.manifestOf((await readFile(iidFile, 'utf8')).trim());
    return viewOfImage(await openContentStore(path.join(this.agent.dataDir, 'content'), manifestDigest));
  }

  /** The image record's manifest digest, whether the iidfile names the config (docker's habit) or the manifest. */
  private async manifestOf(imageId: string): Promise<string> {
    const records = JSON.parse(await readFile(path.join(this.agent.dataDir, 'images.json'), 'utf8')) as Record<
      string,
      { digest: string; manifestDigest: string; configDigest: string }
    >;
    const record = Object.values(records).find((entry) => [entry.configDigest, entry.manifestDigest, entry.digest].includes(imageId));
    if (!record) throw new Error(`no image in the agent's store has the id ${imageId} the iidfile names`);
    return record.manifestDigest;
  }

  async destroy(): Promise<void> {
    await this.agent.destroy();
    await this.registry.destroy();
  }
}
