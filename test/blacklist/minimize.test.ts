// The minimizer on synthetic image trees: real ELF binaries and libraries copied from the host
// (so DT_NEEDED and PT_INTERP are read from real files), a fake kernel module tree with its
// modules.dep, and a small dpkg database.

import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { MinimizeError, minimize, readElfDeps } from '../../blacklist/index.ts';

const LIBDIR = '/usr/lib/x86_64-linux-gnu';
const KVER = '6.1.0-test-amd64';

function newRoot(): { root: string; rules: (text: string, name?: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-bl-'));
  const root = join(dir, 'root');
  mkdirSync(root);
  const rules = (text: string, name = 'test.blacklist') => {
    const file = join(dir, name);
    writeFileSync(file, `${text.trim()}\n`);
    return file;
  };
  return { root, rules };
}

function put(root: string, p: string, content: string | Buffer = 'x', mode = 0o644): void {
  mkdirSync(dirname(join(root, p)), { recursive: true });
  writeFileSync(join(root, p), content);
  chmodSync(join(root, p), mode);
}

function link(root: string, p: string, target: string): void {
  if (existsSync(join(root, p))) return;
  mkdirSync(dirname(join(root, p)), { recursive: true });
  symlinkSync(target, join(root, p));
}

function copyHost(root: string, host: string, p: string, mode = 0o755): void {
  put(root, p, readFileSync(realpathSync(host)), mode);
}

/** Every path under root (with symlink targets), to compare trees before and after. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(join(root, d), { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk('');
  return out.sort();
}

/**
 * A merged-/usr image with /usr/bin/ls and what it loads. The loader is reached through an
 * absolute symlink to a directory the host does not have, so resolving it on the host fails.
 */
function elfImage(root: string): void {
  link(root, '/lib', 'usr/lib');
  link(root, '/lib64', 'usr/lib64');
  link(root, '/bin', 'usr/bin');
  copyHost(root, '/usr/bin/ls', '/usr/bin/ls');
  copyHost(root, '/lib/x86_64-linux-gnu/libc.so.6', `${LIBDIR}/libc.so.6`, 0o644);
  copyHost(root, '/lib/x86_64-linux-gnu/libselinux.so.1', `${LIBDIR}/libselinux.so.1`, 0o644);
  copyHost(root, '/lib/x86_64-linux-gnu/libpcre2-8.so.0', `${LIBDIR}/libpcre2-8.so.0.11.2`, 0o644);
  link(root, `${LIBDIR}/libpcre2-8.so.0`, 'libpcre2-8.so.0.11.2');
  copyHost(root, '/lib64/ld-linux-x86-64.so.2', '/opt/hvtest-ld/ld-linux-x86-64.so.2');
  link(root, '/usr/lib64/ld-linux-x86-64.so.2', '/opt/hvtest-ld/ld-linux-x86-64.so.2');
  put(root, '/etc/ld.so.conf', 'include /etc/ld.so.conf.d/*.conf\n');
  put(root, '/etc/ld.so.conf.d/x86_64-linux-gnu.conf', `# multiarch\n${LIBDIR}\n`);
}

function moduleImage(root: string): void {
  link(root, '/lib', 'usr/lib');
  const k = `/usr/lib/modules/${KVER}`;
  put(root, `${k}/kernel/drivers/net/virtio_net.ko.xz`, 'v'.repeat(100));
  put(root, `${k}/kernel/drivers/net/wireless/iwlwifi.ko.zst`, 'w'.repeat(1000));
  put(root, `${k}/kernel/drivers/block/loop.ko`, 'l'.repeat(10));
  put(root, `${k}/kernel/net/core/failover.ko.xz`, 'f'.repeat(20));
  put(root, `${k}/kernel/net/core/net_failover.ko.xz`, 'n'.repeat(30));
  put(root, `${k}/kernel/sound/core/snd.ko`, 's'.repeat(300));
  put(root, `${k}/kernel/sound/core/snd-timer.ko`, 't'.repeat(40));
  put(root, `${k}/kernel/drivers/gpu/drm/tiny/bochs.ko`, 'b'.repeat(5));
  put(
    root,
    `${k}/modules.dep`,
    [
      'kernel/drivers/net/virtio_net.ko.xz: kernel/net/core/net_failover.ko.xz kernel/net/core/failover.ko.xz',
      'kernel/net/core/net_failover.ko.xz: kernel/net/core/failover.ko.xz',
      'kernel/net/core/failover.ko.xz:',
      'kernel/drivers/net/wireless/iwlwifi.ko.zst:',
      'kernel/drivers/block/loop.ko:',
      'kernel/sound/core/snd-timer.ko: kernel/sound/core/snd.ko',
      'kernel/sound/core/snd.ko:',
      'kernel/drivers/gpu/drm/tiny/bochs.ko: kernel/sound/core/snd-timer.ko kernel/sound/core/snd.ko',
      '',
    ].join('\n'),
  );
  put(root, '/usr/lib/firmware/amdgpu/navi10_gpu_info.bin', 'a'.repeat(64));
  put(root, '/usr/lib/firmware/bnx2/bnx2-mips-09-6.2.1a.fw', 'b'.repeat(64));
}

test('readElfDeps reads DT_NEEDED and PT_INTERP from a real binary, and skips non-ELF files', (t) => {
  const ls = readElfDeps('/usr/bin/ls');
  t.truthy(ls);
  t.true(ls?.needed.includes('libc.so.6'));
  t.regex(ls?.interpreter ?? '', /ld-linux-x86-64\.so\.2$/);
  t.is(readElfDeps('/etc/passwd'), undefined);
  t.is(readElfDeps('/nonexistent'), undefined);
});

test('drop/keep: a dropped directory goes recursively, keep makes exceptions, the most specific rule wins', async (t) => {
  const { root, rules } = newRoot();
  put(root, '/usr/share/doc/bash/README', 'r'.repeat(100));
  put(root, '/usr/share/doc/bash/copyright', 'c');
  put(root, '/usr/share/doc/coreutils/changelog.gz', 'g'.repeat(50));
  put(root, '/usr/share/doc/coreutils/examples/x/y', 'y');
  put(root, '/usr/share/locale/de/LC_MESSAGES/bash.mo', 'd'.repeat(10));
  put(root, '/usr/share/locale/en_GB/LC_MESSAGES/bash.mo', 'e');
  put(root, '/usr/share/locale/en_GB/LC_MESSAGES/junk.mo', 'j');
  put(root, '/usr/share/misc/keep-me', 'k');
  const file = rules(`
drop /usr/share/doc/*
keep /usr/share/doc/*/copyright
drop /usr/share/locale/*
keep /usr/share/locale/en*
drop /usr/share/locale/**/junk.mo
`);
  const report = await minimize(root, [file], {});
  t.true(existsSync(join(root, '/usr/share/doc/bash/copyright')));
  t.false(existsSync(join(root, '/usr/share/doc/bash/README')));
  t.false(existsSync(join(root, '/usr/share/doc/coreutils')));
  t.true(existsSync(join(root, '/usr/share/doc')));
  t.false(existsSync(join(root, '/usr/share/locale/de')));
  t.true(existsSync(join(root, '/usr/share/locale/en_GB/LC_MESSAGES/bash.mo')));
  t.false(existsSync(join(root, '/usr/share/locale/en_GB/LC_MESSAGES/junk.mo')));
  t.true(existsSync(join(root, '/usr/share/misc/keep-me')));
  t.deepEqual(
    report.rules.map((r) => [r.rule, r.files, r.bytes]),
    [
      [`${file}:1`, 3, 151],
      [`${file}:2`, 0, 0],
      [`${file}:3`, 1, 10],
      [`${file}:4`, 0, 0],
      [`${file}:5`, 1, 1],
    ],
  );
  // coreutils/, coreutils/examples/, coreutils/examples/x/, de/, de/LC_MESSAGES/
  t.deepEqual(report.totals, { files: 5, bytes: 162, dirs: 5, packages: 0 });
  t.deepEqual(report.refusals, []);
  t.deepEqual(report.warnings, []);
});

test('a rule that matches nothing is a warning; --strict makes it an error and changes nothing', async (t) => {
  const { root, rules } = newRoot();
  put(root, '/boot/vmlinuz', 'k');
  const file = rules('drop /boot/*\n\ndrop /usr/share/man/*\nmodule-drop sound\ndroppkg perl*');
  const before = listing(root);
  const err = await t.throwsAsync(minimize(root, [file], { strict: true }), { instanceOf: MinimizeError });
  t.is(err?.exitCode, 65);
  t.deepEqual(
    err?.diagnostics.map((d) => [d.file, d.line, d.message]),
    [
      [file, 3, 'drop /usr/share/man/*: matches no file'],
      [file, 4, 'module-drop sound: matches no file'],
      [file, 5, 'droppkg perl*: matches no package'],
    ],
  );
  t.deepEqual(listing(root), before);

  const report = await minimize(root, [file], {});
  t.deepEqual(
    report.warnings.map((d) => [d.severity, d.line]),
    [
      ['warning', 3],
      ['warning', 4],
      ['warning', 5],
    ],
  );
  t.false(existsSync(join(root, '/boot/vmlinuz')));
});

test('syntax errors in any rule file stop before anything changes', async (t) => {
  const { root, rules } = newRoot();
  put(root, '/boot/vmlinuz', 'k');
  const good = rules('drop /boot/*', 'a.blacklist');
  const bad = rules('drop /boot/*\nkeep\nwipe /usr', 'b.blacklist');
  const err = await t.throwsAsync(minimize(root, [good, bad], {}), { instanceOf: MinimizeError });
  t.deepEqual(
    err?.diagnostics.map((d) => `${d.file}:${d.line}`),
    [`${bad}:2`, `${bad}:3`],
  );
  t.true(existsSync(join(root, '/boot/vmlinuz')));
  await t.throwsAsync(minimize(join(root, 'nope'), [good], {}), { message: /does not exist/ });
});

test('modules: module-keep keeps what it depends on; a module a kept module needs is refused, force overrides', async (t) => {
  const { root, rules } = newRoot();
  moduleImage(root);
  const k = `/usr/lib/modules/${KVER}/kernel`;
  const file = rules(`
module-drop drivers/*
module-keep drivers/net
module-drop drivers/net/wireless
module-drop net/core
module-drop sound
module-keep drivers/gpu/drm/tiny
firmware-drop amdgpu
`);
  const report = await minimize(root, [file], {});
  // kept: virtio_net (module-keep) and so net_failover + failover; bochs and so snd + snd-timer
  for (const m of ['drivers/net/virtio_net.ko.xz', 'net/core/failover.ko.xz', 'net/core/net_failover.ko.xz'])
    t.true(existsSync(join(root, k, m)), m);
  t.true(existsSync(join(root, k, 'drivers/gpu/drm/tiny/bochs.ko')));
  t.true(existsSync(join(root, k, 'sound/core/snd.ko')));
  t.false(existsSync(join(root, k, 'drivers/net/wireless')));
  t.false(existsSync(join(root, k, 'drivers/block')));
  t.false(existsSync(join(root, '/usr/lib/firmware/amdgpu')));
  t.true(existsSync(join(root, '/usr/lib/firmware/bnx2/bnx2-mips-09-6.2.1a.fw')));
  t.deepEqual(
    report.refusals.map((r) => [r.rule, r.file, r.consumer]),
    [
      [`${file}:4`, `${k}/net/core/failover.ko.xz`, `${k}/drivers/net/virtio_net.ko.xz`],
      [`${file}:4`, `${k}/net/core/net_failover.ko.xz`, `${k}/drivers/net/virtio_net.ko.xz`],
      [`${file}:5`, `${k}/sound/core/snd-timer.ko`, `${k}/drivers/gpu/drm/tiny/bochs.ko`],
      [`${file}:5`, `${k}/sound/core/snd.ko`, `${k}/drivers/gpu/drm/tiny/bochs.ko`],
    ],
  );
  t.regex(report.refusals[0]?.reason ?? '', /modules\.dep/);
  // the test image has no depmod: a warning, not a failure
  t.true(report.warnings.some((w) => /depmod could not run for kernel 6\.1\.0-test-amd64/.test(w.message)));
  t.is(report.totals.files, 3);
  t.is(report.totals.bytes, 1000 + 10 + 64);

  const forced = newRoot();
  moduleImage(forced.root);
  const forceFile = forced.rules('module-drop sound force');
  const r2 = await minimize(forced.root, [forceFile], { dryRun: true });
  t.deepEqual(r2.refusals, []);
  t.is(r2.totals.files, 2);
  t.true(
    r2.warnings.some(
      (w) => w.line === 1 && /force: removing .*snd\.ko although .*bochs\.ko needs it/.test(w.message),
    ),
  );
});

test('a library a kept binary needs is refused, naming rule, file and consumer; force overrides', async (t) => {
  const { root, rules } = newRoot();
  elfImage(root);
  const file = rules(`
drop ${LIBDIR}/libselinux*
drop ${LIBDIR}/libpcre2-8.so.0.*
drop /opt/hvtest-ld/*
`);
  const report = await minimize(root, [file], { dryRun: true });
  t.deepEqual(
    report.refusals.map((r) => [r.rule, r.file, r.consumer, r.reason]),
    [
      [
        `${file}:3`,
        '/opt/hvtest-ld/ld-linux-x86-64.so.2',
        '/usr/bin/ls',
        'PT_INTERP /lib64/ld-linux-x86-64.so.2',
      ],
      [
        `${file}:2`,
        `${LIBDIR}/libpcre2-8.so.0.11.2`,
        `${LIBDIR}/libselinux.so.1`,
        'DT_NEEDED libpcre2-8.so.0',
      ],
      [`${file}:1`, `${LIBDIR}/libselinux.so.1`, '/usr/bin/ls', 'DT_NEEDED libselinux.so.1'],
    ],
  );
  t.is(report.totals.files, 0);

  // without the binary nothing needs them: they go
  const noLs = rules(
    `drop /usr/bin/ls\ndrop ${LIBDIR}/libselinux*\ndrop ${LIBDIR}/libpcre2-8.so.0*`,
    'nols.blacklist',
  );
  const r2 = await minimize(root, [noLs], {});
  t.deepEqual(r2.refusals, []);
  t.is(r2.totals.files, 4);
  t.false(existsSync(join(root, LIBDIR, 'libselinux.so.1')));
  t.false(existsSync(join(root, LIBDIR, 'libpcre2-8.so.0')));

  const forced = newRoot();
  elfImage(forced.root);
  const ff = forced.rules(`drop ${LIBDIR}/libselinux* force`);
  const r3 = await minimize(forced.root, [ff], {});
  t.deepEqual(r3.refusals, []);
  t.false(existsSync(join(forced.root, LIBDIR, 'libselinux.so.1')));
  t.true(
    r3.warnings.some((w) =>
      /force: removing .*libselinux\.so\.1 although \/usr\/bin\/ls needs it/.test(w.message),
    ),
  );

  // --strict: a refusal is an error and nothing changes
  const strict = newRoot();
  elfImage(strict.root);
  const sf = strict.rules(`drop ${LIBDIR}/libselinux*`);
  const err = await t.throwsAsync(minimize(strict.root, [sf], { strict: true }), {
    instanceOf: MinimizeError,
  });
  t.regex(
    err?.diagnostics[0]?.message ?? '',
    /refused to remove .*libselinux\.so\.1: \/usr\/bin\/ls needs it/,
  );
  t.is(err?.report?.refusals.length, 1);
  t.true(existsSync(join(strict.root, LIBDIR, 'libselinux.so.1')));
});

test('a removed library that has another copy on the search path is not refused', async (t) => {
  const { root, rules } = newRoot();
  elfImage(root);
  copyHost(root, '/lib/x86_64-linux-gnu/libselinux.so.1', '/usr/lib64/libselinux.so.1', 0o644);
  const report = await minimize(root, [rules(`drop ${LIBDIR}/libselinux*`)], { dryRun: true });
  t.deepEqual(report.refusals, []);
  t.is(report.totals.files, 1);
});

// dpkg lists directories too, /bin among them: a symlink to usr/bin on a merged-/usr image
const FOO_LIST = '/.\n/bin\n/bin/foo\n/usr/share/foo\n/usr/share/foo/data.txt\n';

function dpkgImage(root: string): void {
  link(root, '/bin', 'usr/bin');
  const stanza = (name: string, arch = 'amd64') =>
    `Package: ${name}\nStatus: install ok installed\nArchitecture: ${arch}\nVersion: 1.0\nDescription: ${name}\n second line\n`;
  put(
    root,
    '/var/lib/dpkg/status',
    [stanza('foo'), stanza('bar'), stanza('baz'), stanza('libfoo1')].join('\n'),
  );
  put(root, '/var/lib/dpkg/info/foo.list', FOO_LIST);
  put(root, '/var/lib/dpkg/info/foo.md5sums', 'm');
  put(root, '/var/lib/dpkg/info/foo.postinst', '#!/bin/sh\n');
  put(root, '/var/lib/dpkg/info/foo.bar.list', 'not foo\n');
  put(root, '/var/lib/dpkg/info/bar.list', '/usr/bin/bar\n');
  put(root, '/var/lib/dpkg/info/baz:amd64.list', '/usr/share/baz\n/usr/share/baz/b\n/usr/share/common\n');
  put(root, '/var/lib/dpkg/info/libfoo1:amd64.list', '/usr/lib/libfoo.so.1\n');
  put(root, '/usr/bin/foo', 'f'.repeat(100), 0o755);
  put(root, '/usr/bin/bar', 'b'.repeat(100), 0o755);
  put(root, '/usr/share/foo/data.txt', 'd'.repeat(10));
  put(root, '/usr/share/baz/b', 'z');
  put(root, '/usr/share/common/other-package-file', 'o');
  put(root, '/usr/lib/libfoo.so.1', 'l');
}

test('droppkg removes the packages files, info files and status stanza; keeppkg makes exceptions', async (t) => {
  const { root, rules } = newRoot();
  dpkgImage(root);
  const file = rules('droppkg foo\ndroppkg ba*\nkeeppkg bar');
  const report = await minimize(root, [file], {});
  for (const gone of [
    '/usr/bin/foo',
    '/usr/share/foo',
    '/usr/share/baz',
    '/var/lib/dpkg/info/foo.list',
    '/var/lib/dpkg/info/foo.md5sums',
    '/var/lib/dpkg/info/foo.postinst',
    '/var/lib/dpkg/info/baz:amd64.list',
  ])
    t.false(existsSync(join(root, gone)), gone);
  for (const kept of [
    '/usr/bin/bar',
    '/var/lib/dpkg/info/bar.list',
    '/var/lib/dpkg/info/foo.bar.list',
    '/usr/share/common/other-package-file',
    '/usr/lib/libfoo.so.1',
  ])
    t.true(existsSync(join(root, kept)), kept);
  const status = readFileSync(join(root, '/var/lib/dpkg/status'), 'utf8');
  t.deepEqual(
    [...status.matchAll(/^Package: (\S+)/gm)].map((m) => m[1]),
    ['bar', 'libfoo1'],
  );
  t.regex(status, /Description: bar\n second line\n\nPackage: libfoo1/);
  const [foo, ba] = report.rules;
  t.deepEqual(foo?.packages, ['foo:amd64']);
  t.is(foo?.files, 5);
  // /usr/bin/foo, data.txt, foo.list, foo.md5sums, foo.postinst
  t.is(foo?.bytes, 100 + 10 + FOO_LIST.length + 1 + 10);
  t.true(existsSync(join(root, '/bin')));
  t.deepEqual(ba?.packages, ['baz:amd64']);
  t.is(report.totals.packages, 2);
});

test('--dry-run changes nothing and reports the same numbers as the real run', async (t) => {
  const { root, rules } = newRoot();
  elfImage(root);
  moduleImage(root);
  dpkgImage(root);
  put(root, '/usr/share/doc/x/README', 'r'.repeat(7));
  const file = rules(`
drop /usr/share/doc/*
drop ${LIBDIR}/libselinux*
module-drop sound
module-drop drivers/net/wireless
droppkg foo
`);
  const before = listing(root);
  const statusBefore = readFileSync(join(root, '/var/lib/dpkg/status'), 'utf8');
  const dry = await minimize(root, [file], { dryRun: true });
  t.deepEqual(listing(root), before);
  t.is(readFileSync(join(root, '/var/lib/dpkg/status'), 'utf8'), statusBefore);
  t.true(dry.dryRun);
  const real = await minimize(root, [file], {});
  t.false(real.dryRun);
  t.deepEqual(real.rules, dry.rules);
  t.deepEqual(real.totals, dry.totals);
  t.deepEqual(real.refusals, dry.refusals);
  t.true(dry.totals.files > 0);
  t.true(dry.refusals.length > 0);
  t.notDeepEqual(listing(root), before);
});
