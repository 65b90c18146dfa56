// The one size parser (common/size.ts): SI units are powers of 10, IEC units powers of 2.

import test from 'ava';
import { ExitCode, HvError, parseSize, SIZE_PATTERN } from '../../common/index.ts';

const GIB = 2 ** 30;

test('GB is 10^9 bytes, GiB 2^30; MB, MiB, kB, TB, TiB likewise; a number is bytes', (t) => {
  t.is(parseSize('150MB'), 150_000_000);
  t.is(parseSize('1.5GB'), 1_500_000_000);
  t.is(parseSize('1.5GiB'), 1.5 * GIB);
  t.is(parseSize('140 MiB'), 140 * 2 ** 20);
  t.is(parseSize('4kB'), 4000);
  t.is(parseSize('2TB'), 2e12);
  t.is(parseSize('1TiB'), 2 ** 40);
  t.is(parseSize('12B'), 12);
  t.is(parseSize('1234'), 1234);
  t.is(parseSize(1234), 1234);
});

test('a bare K, M, G or T is refused as ambiguous, naming both readings', (t) => {
  const err = t.throws(() => parseSize('4G', { what: '--size', where: 'hvnode iso-to-disk' }));
  t.true(err instanceof HvError);
  t.is((err as HvError).exitCode, ExitCode.dataError);
  t.is(err?.message, '--size "4G" is ambiguous: G could mean GB (10^9) or GiB (2^30) bytes');
  t.is((err as HvError).hint, 'write 4GB or 4GiB');
  t.is((err as HvError).where, 'hvnode iso-to-disk');
  t.regex(t.throws(() => parseSize('512m'))?.message ?? '', /M could mean MB \(10\^6\) or MiB \(2\^20\)/);
});

test('no unit where one is wanted, no size at all, and too small are refused with the option named', (t) => {
  t.regex(
    t.throws(() => parseSize('4096', { what: '--size', bare: 'refuse' }))?.message ?? '',
    /--size "4096" has no unit/,
  );
  for (const bad of ['big', '-1GB', '4XB', '', '1.GB'])
    t.throws(
      () => parseSize(bad, { what: '--size' }),
      { instanceOf: HvError, message: /^--size ".*" is not a size$/ },
      bad,
    );
  t.throws(() => parseSize('0KiB', { what: '--size', min: 2 ** 20 }), {
    message: /--size "0KiB" is too small/,
  });
});

test('the schema pattern takes what the parser takes and refuses the ambiguous forms', (t) => {
  const re = new RegExp(SIZE_PATTERN);
  for (const ok of ['150MB', '140MiB', '1.5 GiB', '1234', '2tb']) t.true(re.test(ok), ok);
  for (const bad of ['4G', '512M', 'lots', '-1MB']) t.false(re.test(bad), bad);
});
