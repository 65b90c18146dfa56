import test from 'ava';
import { HvError, normalizeMac, parseMac, pxelinuxMacName } from '../../common/index.ts';

test('every common notation of a MAC, in any case, gives one canonical form', (t) => {
  for (const text of [
    '52:54:00:12:34:56',
    '52-54-00-12-34-56',
    '525400123456',
    '5254.0012.3456',
    '01-52-54-00-12-34-56',
    '52:54:00:AB:cd:Ef'.replace('AB:cd:Ef', '12:34:56'),
    ' 52:54:00:12:34:56 ',
    '01-52-54-00-12-34-56'.toUpperCase(),
    '5254.0012.3456'.toUpperCase(),
  ])
    t.is(parseMac(text), '52:54:00:12:34:56', text);
  t.is(parseMac('AA:BB:CC:DD:EE:FF'), 'aa:bb:cc:dd:ee:ff');
});

test('malformed MACs are refused', (t) => {
  for (const text of [
    '',
    '52:54:00:12:34',
    '52:54:00:12:34:56:78',
    '52:54-00:12:34:56',
    '5254001234567',
    'zz:54:00:12:34:56',
    '02-52-54-00-12-34-56',
    '52.54.00.12.34.56',
    '../../etc/passwd',
    '52:54:00:12:34:5g',
  ])
    t.is(parseMac(text), undefined, text);
  const err = t.throws(() => normalizeMac('52:54:00:12:34', 'GET /v1/bundles/:mac'), { instanceOf: HvError });
  t.regex(err.message, /not a MAC address: "52:54:00:12:34"/);
  t.is(err.where, 'GET /v1/bundles/:mac');
});

test('pxelinux per-MAC name', (t) => {
  t.is(pxelinuxMacName('52:54:00:12:34:56'), '01-52-54-00-12-34-56');
});
