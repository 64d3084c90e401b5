import test from 'ava';
import { assertRepositoryName, assertTag, isValidRepositoryName, isValidTag } from '../../oci/names.js';

for (const name of ['a', 'library/busybox', 'a/b/c/d', 'a.b', 'a_b', 'a__b', 'a-b', 'a---b', '0', 'x'.repeat(255)]) {
  test(`repository name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)} is valid`, (t) => {
    t.true(isValidRepositoryName(name));
    t.notThrows(() => assertRepositoryName(name));
  });
}

for (const name of ['', 'A', 'a/', '/a', 'a//b', 'a..b', 'a___b', 'a._b', '-a', 'a-', '.a', 'a.', 'a b', 'a:b', 'x'.repeat(256)]) {
  test(`repository name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)} is refused with NAME_INVALID`, (t) => {
    t.false(isValidRepositoryName(name));
    const error = t.throws(() => assertRepositoryName(name));
    t.like(error, { code: 'NAME_INVALID', status: 400 });
  });
}

for (const tag of ['latest', 'v1.0', '_x', 'A-b_c.d', '1', 'x'.repeat(128)]) {
  test(`tag ${JSON.stringify(tag.length > 20 ? `x…(${tag.length})` : tag)} is valid`, (t) => {
    t.true(isValidTag(tag));
  });
}

for (const tag of ['', '.x', '-x', 'a/b', 'a:b', 'a+b', 'x'.repeat(129)]) {
  test(`tag ${JSON.stringify(tag.length > 20 ? `x…(${tag.length})` : tag)} is refused with TAG_INVALID`, (t) => {
    t.false(isValidTag(tag));
    t.like(
      t.throws(() => assertTag(tag)),
      { code: 'TAG_INVALID', status: 400 },
    );
  });
}
