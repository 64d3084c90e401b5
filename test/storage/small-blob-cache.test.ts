import test from 'ava';
import { SmallBlobCache } from '../../server/storage/small-blob-cache.js';

function bytesOf(size: number, fill: number): Buffer {
  return Buffer.alloc(size, fill);
}

test('the least recently used blobs are evicted so the cache never holds more than its total bound', (t) => {
  const cache = new SmallBlobCache(100, 250);
  cache.put('a', bytesOf(100, 1));
  cache.put('b', bytesOf(100, 2));
  t.deepEqual(cache.get('a'), bytesOf(100, 1), 'a hit returns the bytes put');
  cache.put('c', bytesOf(100, 3));

  t.is(cache.totalBytes, 200);
  t.false(cache.has('b'), 'the least recently used blob stays after going over the bound');
  t.true(cache.has('a'));
  t.true(cache.has('c'));
  for (let round = 0; round < 50; round++) {
    cache.put(`blob-${round}`, bytesOf(1 + ((round * 37) % 100), round));
    t.true(cache.totalBytes <= 250, `round ${round} holds ${cache.totalBytes} bytes`);
  }
});

test('a blob over the per-blob bound is never held', (t) => {
  const cache = new SmallBlobCache(64, 1024);
  t.false(cache.accepts(65));
  cache.put('large', bytesOf(65, 1));
  t.false(cache.has('large'));
  t.is(cache.get('large'), undefined);
  t.is(cache.totalBytes, 0);
  cache.put('small', bytesOf(64, 1));
  t.is(cache.totalBytes, 64);
});

test('putting a digest already held counts its bytes once', (t) => {
  const cache = new SmallBlobCache(64, 1024);
  cache.put('same', bytesOf(10, 1));
  cache.put('same', bytesOf(10, 1));
  t.is(cache.totalBytes, 10);
});
