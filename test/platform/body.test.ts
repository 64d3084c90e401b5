import test from 'ava';
import { Readable } from 'node:stream';
import { readBoundedBody } from '../../platform/body.js';
import { CodedError } from '../../platform/errors.js';

test('a body within the limit is read whole', async (t) => {
  const body = await readBoundedBody(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), { limit: 4, declaredLength: 4 });
  t.is(body.toString(), 'abcd');
});

test('a declared length over the limit is refused before reading, with 413 SIZE_INVALID', async (t) => {
  let read = false;
  const source = (async function* () {
    read = true;
    yield Buffer.from('x');
  })();
  const error = await t.throwsAsync(readBoundedBody(source, { limit: 4, declaredLength: 5 }), { instanceOf: CodedError });
  t.like(error, { status: 413, code: 'SIZE_INVALID' });
  t.false(read);
});

test('a body passing the limit without a declared length stops at the first chunk past it', async (t) => {
  let chunks = 0;
  const source = (async function* () {
    for (let index = 0; index < 1000; index++) {
      chunks++;
      yield Buffer.alloc(3);
    }
  })();
  await t.throwsAsync(readBoundedBody(source, { limit: 4 }), { instanceOf: CodedError, message: /exceeds the size limit of 4 bytes/ });
  t.is(chunks, 2);
});

test('a body shorter than its Content-Length is refused with 400', async (t) => {
  const error = await t.throwsAsync(readBoundedBody(Readable.from([Buffer.from('ab')]), { limit: 10, declaredLength: 3 }), {
    instanceOf: CodedError,
  });
  t.like(error, { status: 400, code: 'SIZE_INVALID' });
});

test('a body whose stream fails is refused with 400, not passed on as a crash', async (t) => {
  const source = (async function* () {
    yield Buffer.from('a');
    throw new Error('aborted');
  })();
  await t.throwsAsync(readBoundedBody(source, { limit: 10 }), { instanceOf: CodedError, message: /ended early/ });
});
