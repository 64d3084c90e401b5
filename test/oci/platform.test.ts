import test from 'ava';
import { formatPlatform, parsePlatform, platformRank } from '../../oci/platform.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };

test('an exact platform ranks best', (t) => {
  t.is(platformRank(amd64, amd64), 0);
  t.is(platformRank(arm64, arm64), 0);
});

test('arm64 without a variant is arm64/v8', (t) => {
  t.is(platformRank({ os: 'linux', architecture: 'arm64' }, arm64), 0);
});

test('another os or architecture cannot run', (t) => {
  t.is(platformRank({ os: 'windows', architecture: 'amd64' }, amd64), undefined);
  t.is(platformRank(arm64, amd64), undefined);
  t.is(platformRank(undefined, amd64), undefined);
});

test('an entry without a variant ranks after the exact variant, another variant not at all', (t) => {
  const armv7 = { os: 'linux', architecture: 'arm', variant: 'v7' };
  t.is(platformRank({ os: 'linux', architecture: 'arm' }, armv7), 1);
  t.is(platformRank({ os: 'linux', architecture: 'arm', variant: 'v6' }, armv7), undefined);
});

test('an amd64 v1 build runs on plain amd64, a v3 build does not', (t) => {
  t.is(platformRank({ ...amd64, variant: 'v1' }, amd64), 1);
  t.is(platformRank({ ...amd64, variant: 'v3' }, amd64), undefined);
});

test('platforms parse from and format to os/arch[/variant]', (t) => {
  t.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.is(formatPlatform(parsePlatform('linux/amd64')), 'linux/amd64');
  t.throws(() => parsePlatform('linux'), { message: /os\/architecture/ });
});
