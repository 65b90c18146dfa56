import test from 'ava';
import { formatDiagnostic, formatError, HvError, notBuiltYet, Report } from '../../common/index.ts';

test('a report keeps every problem, sorted by position, and is fatal only with an error', (t) => {
  const r = new Report();
  r.warning('w', { file: 'b.ks', line: 1 });
  t.false(r.hasErrors);
  r.error('second', { file: 'a.ks', line: 9 }).error('first', { file: 'a.ks', line: 2 });
  t.true(r.hasErrors);
  t.deepEqual(
    r.sorted().map((d) => d.message),
    ['first', 'second', 'w'],
  );
  t.notThrows(() => new Report().warning('only a warning').throwIfErrors('x'));
  const err = t.throws(() => r.throwIfErrors('bad input'), { instanceOf: HvError });
  t.is(err?.exitCode, 65);
  t.is(err?.diagnostics.length, 2);
});

test('diagnostics print as FILE:LINE: severity: message', (t) => {
  t.is(formatDiagnostic({ severity: 'error', message: 'm', file: 'f.ks', line: 3 }), 'f.ks:3: error: m');
  t.is(
    formatDiagnostic({ severity: 'warning', message: 'm', file: 'p.yaml', line: 2, column: 5, path: '/a' }),
    'p.yaml:2:5: warning: m (at /a)',
  );
  t.is(formatDiagnostic({ severity: 'error', message: 'm', hint: 'h' }), 'error: m\n  hint: h');
});

test('user errors print without a stack; internal errors with a hint; --debug adds the stack', (t) => {
  const e = new HvError('cannot read', { where: 'p.yaml', hint: 'check the path' });
  t.is(formatError('hvnode', e, false), 'hvnode: p.yaml: cannot read\n  hint: check the path');
  t.regex(formatError('hvnode', e, true), /at /);
  t.is(
    formatError('hvnode-node', notBuiltYet('hvnode-node cmdline'), false),
    'hvnode-node cmdline: not built yet',
  );
  const internal = formatError('hvnode', new TypeError('x is undefined'), false);
  t.regex(internal, /^hvnode: internal error: x is undefined\n {2}hint: run again with --debug/);
  t.notRegex(internal, /at /);
});
