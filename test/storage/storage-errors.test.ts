import test from 'ava';
import { storageFailure } from '../../server/storage/storage-errors.js';

function systemError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed, write`), { code });
}

test('a full disk or quota is 507 STORAGE_FULL with a message that says the store is full', (t) => {
  for (const code of ['ENOSPC', 'EDQUOT']) {
    const error = storageFailure(systemError(code));
    t.is(error?.status, 507, code);
    t.deepEqual(
      error?.toJSON().errors.map((entry) => entry.code),
      ['STORAGE_FULL'],
    );
    t.regex(error?.message ?? '', new RegExp(`storage is full \\(${code}`));
  }
});

test('a failing or read-only disk is 503 STORAGE_UNAVAILABLE with Retry-After and the reason', (t) => {
  for (const [code, reason] of [
    ['EIO', 'input/output error'],
    ['EROFS', 'read-only file system'],
  ]) {
    const error = storageFailure(systemError(code!));
    t.is(error?.status, 503, code);
    t.is(error?.code, 'STORAGE_UNAVAILABLE');
    t.is(error?.headers['Retry-After'], '10');
    t.true(error?.message.includes(reason!), error?.message);
  }
});

test('errors that are not storage failures are left to their callers', (t) => {
  for (const error of [
    systemError('ENOENT'),
    systemError('ECONNRESET'),
    systemError('constructor'),
    new Error('plain'),
    undefined,
    'text',
  ]) {
    t.is(storageFailure(error), undefined);
  }
});
