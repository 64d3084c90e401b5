import test from 'ava';
import { InvalidReferenceError, canonicalReference, familiarName, formatReference, parseReference } from '../../oci/reference.js';

const DIGEST = `sha256:${'c'.repeat(64)}`;

for (const [input, canonical] of [
  ['busybox', 'docker.io/library/busybox:latest'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36'],
  ['team/app', 'docker.io/team/app:latest'],
  ['docker.io/busybox', 'docker.io/library/busybox:latest'],
  ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
  ['localhost/app', 'localhost/app:latest'],
  ['localhost:5000/a/b', 'localhost:5000/a/b:latest'],
  [`localhost:5000/a/b@${DIGEST}`, `localhost:5000/a/b@${DIGEST}`],
  [`busybox:1@${DIGEST}`, `docker.io/library/busybox:1@${DIGEST}`],
  ['127.0.0.1:5000/team/app:v1.0', '127.0.0.1:5000/team/app:v1.0'],
  ['registry.example.com/a/b/c', 'registry.example.com/a/b/c:latest'],
  ['[::1]:5000/app', '[::1]:5000/app:latest'],
  ['team/a.b-c__d', 'docker.io/team/a.b-c__d:latest'],
] as const) {
  test(`${input} normalises like docker to ${canonical}`, (t) => {
    t.is(canonicalReference(parseReference(input)), canonical);
  });
}

test('a digest reference has no default tag', (t) => {
  t.deepEqual(parseReference(`localhost:5000/a/b@${DIGEST}`), {
    registry: 'localhost:5000',
    repository: 'a/b',
    tag: undefined,
    digest: DIGEST,
  });
});

test('familiar names leave out docker.io and library/', (t) => {
  t.is(familiarName(parseReference('busybox')), 'busybox');
  t.is(familiarName(parseReference('team/app')), 'team/app');
  t.is(formatReference(parseReference('127.0.0.1:5000/x:1')), '127.0.0.1:5000/x:1');
});

for (const [title, input] of [
  ['an uppercase repository', 'Busybox'],
  ['an uppercase path component after a host', 'localhost:5000/Team/app'],
  ['an empty string', ''],
  ['a trailing slash', 'team/'],
  ['a double slash', 'team//app'],
  ['a tag longer than 128 characters', `app:${'t'.repeat(129)}`],
  ['a tag starting with a dot', 'app:.hidden'],
  ['a short digest', 'app@sha256:abc'],
  ['a digest of an unknown algorithm', `app@md5:${'c'.repeat(32)}`],
  ['a separator at the end of a component', 'app-'],
  ['an empty tag', 'app:'],
  ['a repository longer than 255 characters', `${'a'.repeat(256)}`],
  ['a registry host with an underscore', 'bad_host.example.com/app'],
] as const) {
  test(`a reference with ${title} is refused`, (t) => {
    t.throws(() => parseReference(input), { instanceOf: InvalidReferenceError, message: /invalid reference format/ });
  });
}

test('the error class does not shadow the JavaScript global ReferenceError', (t) => {
  t.not(InvalidReferenceError.name, 'ReferenceError');
  t.false(new InvalidReferenceError('x') instanceof globalThis.ReferenceError);
});
