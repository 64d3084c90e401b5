import test from 'ava';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import {
  ContentVerificationError,
  DigestingStream,
  InvalidDigestError,
  chainIds,
  digestOf,
  isDigest,
  parseDigest,
  verifyDigest,
} from '../../oci/digest.js';

const HEX64 = 'a'.repeat(64);
const HEX128 = 'b'.repeat(128);

test('a sha256 digest with 64 lowercase hex characters parses into algorithm and hex', (t) => {
  t.deepEqual(parseDigest(`sha256:${HEX64}`), { algorithm: 'sha256', hex: HEX64, value: `sha256:${HEX64}` });
});

test('a sha512 digest with 128 lowercase hex characters parses', (t) => {
  t.is(parseDigest(`sha512:${HEX128}`).algorithm, 'sha512');
});

for (const [title, input] of [
  ['without a colon', HEX64],
  ['with an empty algorithm', `:${HEX64}`],
  ['with an empty encoded part', 'sha256:'],
  ['with uppercase hex', `sha256:${'A'.repeat(64)}`],
  ['one hex character short', `sha256:${'a'.repeat(63)}`],
  ['one hex character long', `sha256:${'a'.repeat(65)}`],
  ['a sha256 length under sha512', `sha512:${HEX64}`],
  ['an uppercase algorithm', `SHA256:${HEX64}`],
  ['an algorithm component ending in a separator', `sha256+:${HEX64}`],
  ['a grammatical but unregistered algorithm', `sha256+b64u:${HEX64}`],
  ['characters outside the encoded grammar', `sha256:${'a'.repeat(63)}!`],
  ['a trailing newline', `sha256:${HEX64}\n`],
] as const) {
  test(`a digest ${title} is refused with DIGEST_INVALID`, (t) => {
    const error = t.throws(() => parseDigest(input), { instanceOf: InvalidDigestError });
    t.is(error?.code, 'DIGEST_INVALID');
    t.is(error?.status, 400);
    t.false(isDigest(input));
  });
}

test('digestOf hashes with the named algorithm', (t) => {
  t.is(digestOf('abc'), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.true(digestOf('abc', 'sha512').startsWith('sha512:ddaf35a193617aba'));
});

test('verifyDigest accepts matching content and refuses other content', (t) => {
  const bytes = Buffer.from('content');
  t.notThrows(() => verifyDigest(bytes, digestOf(bytes)));
  t.throws(() => verifyDigest(Buffer.from('other'), digestOf(bytes)), { instanceOf: ContentVerificationError });
});

test('chain ids follow the image spec: the first is the diff id, the next hashes parent and diff id', (t) => {
  const [first, second] = [digestOf('layer 1'), digestOf('layer 2')];
  t.deepEqual(chainIds([first, second]), [first, digestOf(`${first} ${second}`)]);
});

async function streamThrough(stream: DigestingStream, parts: Buffer[]): Promise<void> {
  const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  await pipeline(Readable.from(parts), stream, sink);
}

test('a verifying stream passes content that matches its digest and size', async (t) => {
  const parts = [Buffer.from('hello '), Buffer.from('world')];
  const whole = Buffer.concat(parts);
  const stream = DigestingStream.verifying({ digest: digestOf(whole), size: whole.length });
  await t.notThrowsAsync(streamThrough(stream, parts));
  t.is(stream.bytes, whole.length);
});

test('a verifying stream fails on content that hashes to another digest', async (t) => {
  const stream = DigestingStream.verifying({ digest: digestOf('expected'), size: 8 });
  await t.throwsAsync(streamThrough(stream, [Buffer.from('tampered')]), { instanceOf: ContentVerificationError, message: /hashes to/ });
});

test('a verifying stream fails as soon as content passes the declared size', async (t) => {
  const stream = DigestingStream.verifying({ digest: digestOf('four'), size: 4 });
  await t.throwsAsync(streamThrough(stream, [Buffer.from('four'), Buffer.from('more')]), {
    instanceOf: ContentVerificationError,
    message: /larger than/,
  });
});

test('a verifying stream fails on content shorter than the declared size', async (t) => {
  const stream = DigestingStream.verifying({ digest: digestOf('four'), size: 5 });
  await t.throwsAsync(streamThrough(stream, [Buffer.from('four')]), {
    instanceOf: ContentVerificationError,
    message: /got 4 bytes, expected 5/,
  });
});
