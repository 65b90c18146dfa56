// Rule file syntax and glob semantics: pure, no file system.

import test from 'ava';
import { compileGlob, formatGroups, parseRules } from '../../blacklist/index.ts';
import { groupTable } from '../../blacklist/minimize.ts';

test('directives, comments, blank lines and force parse into rules with file:line', (t) => {
  const { rules, report } = parseRules(
    [
      '# docs',
      'drop /usr/share/doc/*',
      '',
      'keep /usr/share/doc/*/copyright   # licences stay',
      'droppkg perl* force',
      'keeppkg perl-base',
      'module-drop sound',
      'module-keep /drivers/net/',
      'firmware-drop amdgpu',
      'firmware-keep amdgpu/keep*',
    ].join('\n'),
    'x.blacklist',
  );
  t.deepEqual(report.entries, []);
  t.deepEqual(
    rules.map((r) => [r.id, r.directive, r.pattern, r.force]),
    [
      ['x.blacklist:2', 'drop', '/usr/share/doc/*', false],
      ['x.blacklist:4', 'keep', '/usr/share/doc/*/copyright', false],
      ['x.blacklist:5', 'droppkg', 'perl*', true],
      ['x.blacklist:6', 'keeppkg', 'perl-base', false],
      ['x.blacklist:7', 'module-drop', 'sound', false],
      ['x.blacklist:8', 'module-keep', '/drivers/net/', false],
      ['x.blacklist:9', 'firmware-drop', 'amdgpu', false],
      ['x.blacklist:10', 'firmware-keep', 'amdgpu/keep*', false],
    ],
  );
  // module globs are relative to the kernel tree whatever slashes were written
  t.is(rules[5]?.glob.source, 'drivers/net');
});

test('every syntax error is reported with its file and line, and parsing goes on', (t) => {
  const { rules, report } = parseRules(
    [
      'drop /boot/*',
      'remove /usr/share/doc/*',
      'drop',
      'drop /a /b',
      'keep /usr/share/doc/* force',
      'drop usr/share/man/*',
      'droppkg usr/bin/perl',
      'module-keep fs/ext4',
    ].join('\n'),
    'rules/bad.blacklist',
  );
  t.deepEqual(
    rules.map((r) => r.line),
    [1, 8],
  );
  t.true(report.hasErrors);
  t.deepEqual(
    report.errors.map((d) => [d.file, d.line]),
    [2, 3, 4, 5, 6, 7].map((l) => ['rules/bad.blacklist', l]),
  );
  const msg = (line: number) => report.errors.find((d) => d.line === line)?.message ?? '';
  t.regex(msg(2), /unknown directive "remove"/);
  t.regex(msg(3), /"drop" needs a path glob/);
  t.regex(msg(4), /extra words after "drop \/a": \/b/);
  t.regex(report.errors.find((d) => d.line === 5)?.hint ?? '', /only allowed on drop rules/);
  t.regex(msg(6), /absolute path/);
  t.regex(msg(7), /package name glob/);
});

test('globs: * and ? stay in one segment, ** crosses, [...] classes, \\ escapes', (t) => {
  const m = (g: string, p: string) => compileGlob(g).re.test(p);
  t.true(m('/usr/share/doc/*', '/usr/share/doc/bash'));
  t.false(m('/usr/share/doc/*', '/usr/share/doc/bash/copyright'));
  t.true(m('/usr/share/doc/*/copyright', '/usr/share/doc/bash/copyright'));
  t.true(m('/usr/**/*.pyc', '/usr/lib/python3/dist-packages/x/y.pyc'));
  t.true(m('/usr/**/*.pyc', '/usr/y.pyc'));
  t.false(m('/usr/**/*.pyc', '/etc/y.pyc'));
  t.true(m('/lib/libc.so.?', '/lib/libc.so.6'));
  t.false(m('/lib/libc.so.?', '/lib/libc.so.61'));
  t.true(m('/usr/share/locale/[a-d]*', '/usr/share/locale/de'));
  t.false(m('/usr/share/locale/[!a-d]*', '/usr/share/locale/de'));
  t.true(m('/usr/share/locale/[!a-d]*', '/usr/share/locale/fr'));
  t.true(m('/x/a\\*b', '/x/a*b'));
  t.false(m('/x/a\\*b', '/x/aXb'));
  t.true(m('/x/[', '/x/['));
  const g = compileGlob('/usr/share/locale/en*');
  t.is(g.prefix, '/usr/share/locale/en');
  t.is(g.segments, 4);
  t.is(compileGlob('/usr/**/x').segments, Number.POSITIVE_INFINITY);
});

test('rules belong to the group of the "##" heading above them; the size table runs group by group', (t) => {
  const { rules } = parseRules(
    [
      'drop /x/*',
      '## Documentation: manuals',
      '## (a second heading line continues the first)',
      'drop /usr/share/doc/*',
      'drop /usr/share/man/*',
      '## Kernel modules (relative to the tree)',
      'module-drop sound',
    ].join('\n'),
    '/rules/a.blacklist',
  );
  t.deepEqual(
    rules.map((r) => r.group),
    ['a.blacklist', 'Documentation', 'Documentation', 'Kernel modules'],
  );
  const results = rules.map((r, i) => ({
    rule: r.id,
    directive: r.directive,
    pattern: r.pattern,
    force: false,
    group: r.group,
    files: 1,
    bytes: (i + 1) * 100,
  }));
  t.deepEqual(groupTable(results, 10_000), [
    { group: 'a.blacklist', files: 1, bytes: 100, before: 10_000, after: 9_900 },
    { group: 'Documentation', files: 2, bytes: 500, before: 9_900, after: 9_400 },
    { group: 'Kernel modules', files: 1, bytes: 400, before: 9_400, after: 9_000 },
  ]);
  t.regex(formatGroups(groupTable(results, 10_000)), /^Documentation\s+2\s+0\.0 MiB\s+0\.0 MiB\s+0\.0 MiB$/m);
  t.is(groupTable(results)[0]?.before, undefined);
});
