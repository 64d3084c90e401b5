import test from 'ava';
import bcrypt from 'bcryptjs';
import { hashPassword, passwordMatches, UNKNOWN_ACCOUNT_HASH } from '../../server/auth/secrets.js';

test('an unknown account is checked against a hash of the same bcrypt cost as a stored password, and never matches', async (t) => {
  const stored = await hashPassword('a-real-password');
  t.is(bcrypt.getRounds(UNKNOWN_ACCOUNT_HASH), bcrypt.getRounds(stored));
  t.true(await passwordMatches('a-real-password', stored));
  t.false(await passwordMatches('a-real-password', undefined));
  t.false(await passwordMatches('', undefined));
});
