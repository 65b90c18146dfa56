import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { Kickstart } from '../../builder/kickstart/index.ts';
import {
  formatKickstart,
  KNOWN_COMMANDS,
  parseKickstart,
  parseKickstartFile,
} from '../../builder/kickstart/index.ts';
import type { Report } from '../../common/index.ts';

const ROOT = path.resolve('/ks');

/** Lines of a kickstart, so that line numbers in the assertions are easy to count. */
function ks(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

/** Parses `top` from an in-memory tree rooted at /ks (keys are paths relative to it). */
function parseTree(files: Record<string, string>, top = 'top.ks') {
  const tree = new Map(Object.entries(files).map(([name, text]) => [path.join(ROOT, name), text]));
  const file = path.join(ROOT, top);
  return parseKickstart(tree.get(file) ?? '', { file, readFile: (abs) => tree.get(abs) });
}

function parse(text: string) {
  return parseTree({ 'top.ks': text });
}

/** `FILE:LINE: message` for every diagnostic of one severity, paths relative to /ks. */
function list(report: Report, severity: 'error' | 'warning' = 'error'): string[] {
  const entries = severity === 'error' ? report.errors : report.warnings;
  return entries.map((d) => `${path.relative(ROOT, d.file ?? '?')}:${d.line}: ${d.message}`);
}

/** The kickstart without positions and file list, to compare a round trip. */
function content(k: Kickstart): unknown {
  return JSON.parse(
    JSON.stringify({ ...k, files: undefined }, (key, value) =>
      key === 'file' || key === 'line' ? undefined : value,
    ),
  );
}

const FULL = ks(
  '# hvnode base image',
  'lang en_US.UTF-8',
  'keyboard --vckeymap=us',
  'timezone --utc Etc/UTC',
  'auth --useshadow --passalgo=sha512',
  'selinux --enforcing',
  'firewall --disabled',
  'part / --size 4096 --fstype=ext4',
  'partition swap --size=512',
  'bootloader --timeout=1 --append="console=ttyS0 rd.live.image" --location=mbr',
  'network --bootproto=dhcp --device=eth0 --hostname=node1',
  'rootpw --iscrypted $6$salt$hash',
  "user --name=admin --groups=wheel,kvm --password='se cret' --shell /bin/bash",
  'services --enabled=sshd,libvirtd --disabled=NetworkManager-wait-online',
  'repo --name=base --baseurl=http://mirror/el9/BaseOS/x86_64/os/ --cost=10',
  'repo --name="app stream" --mirrorlist=https://mirrors/?repo=AppStream&arch=x86_64',
  'url --url=http://mirror/el9/BaseOS/x86_64/os/',
  'zerombr',
  'clearpart --all --initlabel',
  'skipx',
  'shutdown',
  '',
  '%packages --excludedocs --instLangs=en_US',
  '@core',
  '@^minimal-environment',
  'kernel',
  'libvirt*',
  '# comments and blank lines are skipped',
  '',
  '-@dial-up',
  '-plymouth*',
  '%end',
  '',
  '%pre --erroronfail',
  'echo pre > /tmp/pre.log',
  '%end',
  '',
  '%post --nochroot --interpreter /usr/bin/bash --log=/mnt/sysimage/root/post.log',
  '# a script comment is code and is kept',
  'cp /etc/resolv.conf "$INSTALL_ROOT/etc/"   # trailing comment',
  '',
  '%include not-an-include.ks',
  '%end',
);

test('parses a complete kickstart without errors', (t) => {
  const { kickstart, report } = parse(FULL);
  t.deepEqual(list(report), []);
  // pykickstart's deprecations: auth (authselect replaced it) and the --instLangs spelling.
  t.deepEqual(list(report, 'warning'), [
    'top.ks:5: kickstart command "auth" is deprecated',
    'top.ks:23: option --instLangs of %packages is deprecated',
  ]);
  t.deepEqual(kickstart.files, [path.join(ROOT, 'top.ks')]);

  t.deepEqual(
    kickstart.commands.map((c) => [c.line, c.name, c.positional, c.options, c.actedOn]),
    [
      [2, 'lang', ['en_US.UTF-8'], {}, true],
      [3, 'keyboard', [], { vckeymap: 'us' }, true],
      [4, 'timezone', ['Etc/UTC'], { utc: true }, true],
      [5, 'auth', [], { useshadow: true, passalgo: 'sha512' }, false],
      [6, 'selinux', [], { enforcing: true }, false],
      [7, 'firewall', [], { disabled: true }, false],
      [8, 'part', ['/'], { size: '4096', fstype: 'ext4' }, false],
      [9, 'part', ['swap'], { size: '512' }, false],
      [10, 'bootloader', [], { timeout: '1', append: 'console=ttyS0 rd.live.image', location: 'mbr' }, true],
      [11, 'network', [], { bootproto: 'dhcp', device: 'eth0', hostname: 'node1' }, false],
      [12, 'rootpw', ['$6$salt$hash'], { iscrypted: true }, true],
      [13, 'user', [], { name: 'admin', groups: 'wheel,kvm', password: 'se cret', shell: '/bin/bash' }, true],
      [14, 'services', [], { enabled: 'sshd,libvirtd', disabled: 'NetworkManager-wait-online' }, true],
      [15, 'repo', [], { name: 'base', baseurl: 'http://mirror/el9/BaseOS/x86_64/os/', cost: '10' }, true],
      [
        16,
        'repo',
        [],
        { name: 'app stream', mirrorlist: 'https://mirrors/?repo=AppStream&arch=x86_64' },
        true,
      ],
      [17, 'url', [], { url: 'http://mirror/el9/BaseOS/x86_64/os/' }, true],
      [18, 'zerombr', [], {}, false],
      [19, 'clearpart', [], { all: true, initlabel: true }, false],
      [20, 'skipx', [], {}, false],
      [21, 'shutdown', [], {}, false],
    ],
  );

  t.deepEqual(kickstart.repos, [
    {
      file: path.join(ROOT, 'top.ks'),
      line: 15,
      name: 'base',
      baseurl: 'http://mirror/el9/BaseOS/x86_64/os/',
      options: { cost: '10' },
    },
    {
      file: path.join(ROOT, 'top.ks'),
      line: 16,
      name: 'app stream',
      mirrorlist: 'https://mirrors/?repo=AppStream&arch=x86_64',
      options: {},
    },
  ]);

  const packages = kickstart.packages;
  if (!packages) return t.fail('no %packages');
  t.is(packages.line, 23);
  t.deepEqual(packages.options, { excludedocs: true, instLangs: 'en_US' });
  t.deepEqual(
    packages.include.map((p) => [p.line, p.name, p.kind, p.glob]),
    [
      [24, '@core', 'group', false],
      [25, '@^minimal-environment', 'environment', false],
      [26, 'kernel', 'package', false],
      [27, 'libvirt*', 'package', true],
    ],
  );
  t.deepEqual(
    packages.exclude.map((p) => [p.line, p.name, p.kind, p.glob]),
    [
      [30, '@dial-up', 'group', false],
      [31, 'plymouth*', 'package', true],
    ],
  );

  t.deepEqual(kickstart.scripts, [
    {
      file: path.join(ROOT, 'top.ks'),
      line: 34,
      kind: 'pre',
      nochroot: false,
      interpreter: '/bin/sh',
      erroronfail: true,
      body: 'echo pre > /tmp/pre.log\n',
    },
    {
      file: path.join(ROOT, 'top.ks'),
      line: 38,
      kind: 'post',
      nochroot: true,
      interpreter: '/usr/bin/bash',
      erroronfail: false,
      log: '/mnt/sysimage/root/post.log',
      body: [
        '# a script comment is code and is kept',
        'cp /etc/resolv.conf "$INSTALL_ROOT/etc/"   # trailing comment',
        '',
        '%include not-an-include.ks',
        '',
      ].join('\n'),
    },
  ]);
});

test('tokenizes quotes, escapes and comments like pykickstart', (t) => {
  const { kickstart, report } = parse(
    ks(
      String.raw`bootloader --append="a \"quoted\" back\\slash \n" # comment "unterminated`,
      String.raw`rootpw 'single \ quoted "#"'`,
      String.raw`lang en\ US\#x#y`,
      'timezone Europe/#Paris',
      'keyboard "" --vckeymap=us',
    ),
  );
  t.deepEqual(report.entries, []);
  t.deepEqual(
    kickstart.commands.map((c) => [c.name, c.positional, c.options]),
    [
      ['bootloader', [], { append: String.raw`a "quoted" back\slash \n` }],
      ['rootpw', [String.raw`single \ quoted "#"`], {}],
      ['lang', ['en US#x#y'], {}],
      ['timezone', ['Europe/#Paris'], {}],
      ['keyboard', [''], { vckeymap: 'us' }],
    ],
  );
});

test('KNOWN_COMMANDS says which commands the builder acts on', (t) => {
  const acted = [...KNOWN_COMMANDS].filter(([, v]) => v.actedOn).map(([name]) => name);
  t.deepEqual(acted.sort(), [
    'bootloader',
    'keyboard',
    'lang',
    'repo',
    'rootpw',
    'services',
    'timezone',
    'url',
    'user',
  ]);
  for (const name of [
    'auth',
    'authconfig',
    'device',
    'network',
    'part',
    'partition',
    'selinux',
    'reboot',
    'poweroff',
  ]) {
    t.is(KNOWN_COMMANDS.get(name)?.actedOn, false, name);
  }
  t.is(KNOWN_COMMANDS.size, 86);
  t.is(KNOWN_COMMANDS.get('device')?.status, 'removed');
  t.is(KNOWN_COMMANDS.get('auth')?.status, 'deprecated');
  t.is(KNOWN_COMMANDS.get('autopart')?.status, 'current');
});

test('a repeated single command keeps the last one, with a warning', (t) => {
  const { kickstart, report } = parse(ks('lang en_US.UTF-8', 'timezone UTC', 'lang de_DE.UTF-8'));
  t.deepEqual(list(report), []);
  t.deepEqual(list(report, 'warning'), [
    `top.ks:3: lang given more than once; the one at ${path.join(ROOT, 'top.ks')}:1 is ignored`,
  ]);
  t.deepEqual(
    kickstart.commands.map((c) => [c.line, c.name, c.positional]),
    [
      [2, 'timezone', ['UTC']],
      [3, 'lang', ['de_DE.UTF-8']],
    ],
  );
});

test('%include resolves relative to the including file and keeps its own positions', (t) => {
  const { kickstart, report } = parseTree(
    {
      'profiles/node.ks': ks(
        'lang en_US.UTF-8',
        '%include ../partials/base.ks',
        '%packages',
        'kernel',
        '%include ../partials/pkgs.ks',
        '-dracut-config-rescue',
        '%end',
        `%ksappend ${path.join(ROOT, 'partials/net.ks')}`,
      ),
      'partials/base.ks': ks('# shared base', 'timezone UTC', '%include repos.ks', '%include net.ks'),
      'partials/repos.ks': ks('repo --name=base --baseurl=http://m/os/'),
      'partials/net.ks': ks('network --bootproto=dhcp'),
      'partials/pkgs.ks': ks('', '@core', '-plymouth'),
    },
    'profiles/node.ks',
  );
  t.deepEqual(report.entries, []);
  t.deepEqual(
    kickstart.files.map((f) => path.relative(ROOT, f)),
    ['profiles/node.ks', 'partials/base.ks', 'partials/repos.ks', 'partials/net.ks', 'partials/pkgs.ks'],
  );
  t.deepEqual(
    kickstart.commands.map((c) => `${path.relative(ROOT, c.file)}:${c.line} ${c.name}`),
    [
      'profiles/node.ks:1 lang',
      'partials/base.ks:2 timezone',
      'partials/repos.ks:1 repo',
      'partials/net.ks:1 network',
      'partials/net.ks:1 network',
    ],
  );
  t.deepEqual(
    kickstart.packages?.include.map((p) => `${path.relative(ROOT, p.file)}:${p.line} ${p.name}`),
    ['profiles/node.ks:4 kernel', 'partials/pkgs.ks:2 @core'],
  );
  t.deepEqual(
    kickstart.packages?.exclude.map((p) => `${path.relative(ROOT, p.file)}:${p.line} ${p.name}`),
    ['partials/pkgs.ks:3 plymouth', 'profiles/node.ks:6 dracut-config-rescue'],
  );
});

test('included file names stay relative when the top file is named relatively', (t) => {
  const tree = new Map([
    [path.resolve('profiles/a.ks'), ks('%include ../partials/b.ks')],
    [path.resolve('partials/b.ks'), ks('bogus')],
  ]);
  const { kickstart, report } = parseKickstart(tree.get(path.resolve('profiles/a.ks')) ?? '', {
    file: 'profiles/a.ks',
    readFile: (abs) => tree.get(abs),
  });
  t.deepEqual(kickstart.files, ['profiles/a.ks', 'partials/b.ks']);
  t.deepEqual(
    report.errors.map((d) => [d.file, d.line, d.message]),
    [['partials/b.ks', 1, 'unknown kickstart command "bogus"']],
  );
});

test('parseKickstartFile reads the file and its includes from disk', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hvnode-ks-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, 'partials'));
  await fs.writeFile(path.join(dir, 'top.ks'), ks('%include partials/a.ks', 'lang C.UTF-8'));
  await fs.writeFile(path.join(dir, 'partials/a.ks'), ks('timezone UTC', '%include missing.ks'));

  const { kickstart, report } = parseKickstartFile(path.join(dir, 'top.ks'));
  t.deepEqual(kickstart.files, [path.join(dir, 'top.ks'), path.join(dir, 'partials/a.ks')]);
  t.deepEqual(
    kickstart.commands.map((c) => c.name),
    ['timezone', 'lang'],
  );
  t.deepEqual(
    report.errors.map((d) => [d.file, d.line, d.message]),
    [
      [
        path.join(dir, 'partials/a.ks'),
        2,
        `included file not found: ${path.join(dir, 'partials/missing.ks')}`,
      ],
    ],
  );

  const missing = parseKickstartFile(path.join(dir, 'nope.ks'));
  t.deepEqual(
    missing.report.errors.map((d) => [d.file, d.message]),
    [[path.join(dir, 'nope.ks'), 'cannot read the kickstart file']],
  );
  t.deepEqual(missing.kickstart, { commands: [], repos: [], scripts: [], files: [] });
});

test('several %packages sections merge in order', (t) => {
  const { kickstart, report } = parse(
    ks(
      '%packages --excludedocs',
      'vim-minimal',
      '@core --nodefaults',
      '%end',
      '%post',
      'true',
      '%end',
      '%packages --ignoremissing --retries=3',
      '-vim-minimal',
      'qemu-kvm',
      '%end',
    ),
  );
  t.deepEqual(list(report), []);
  t.deepEqual(list(report, 'warning'), ['top.ks:3: group option --nodefaults is not used by the builder']);
  t.is(kickstart.packages?.line, 1);
  t.deepEqual(kickstart.packages?.options, { excludedocs: true, ignoremissing: true, retries: '3' });
  t.deepEqual(
    kickstart.packages?.include.map((p) => [p.line, p.name]),
    [
      [2, 'vim-minimal'],
      [3, '@core'],
      [10, 'qemu-kvm'],
    ],
  );
  t.deepEqual(
    kickstart.packages?.exclude.map((p) => [p.line, p.name]),
    [[9, 'vim-minimal']],
  );
});

test('sections the builder does not use are skipped with a warning', (t) => {
  const { kickstart, report } = parse(
    ks(
      '%addon com_redhat_kdump --enable',
      'bogus line',
      '%end',
      '%onerror',
      'echo failed',
      '%end',
      '%anaconda',
      'pwpolicy root --minlen=6',
      '%end',
      'lang C.UTF-8',
    ),
  );
  t.deepEqual(list(report), []);
  t.deepEqual(list(report, 'warning'), [
    'top.ks:1: section %addon is not used by the builder',
    'top.ks:4: section %onerror is not used by the builder',
    'top.ks:7: section %anaconda is not used by the builder',
  ]);
  t.deepEqual(
    kickstart.commands.map((c) => c.name),
    ['lang'],
  );
  t.deepEqual(kickstart.scripts, []);
});

test('formatKickstart writes text that parses back to the same kickstart', (t) => {
  const first = parse(FULL);
  const text = formatKickstart(first.kickstart);
  const second = parse(text);
  t.deepEqual(list(second.report), []);
  // --instLangs is written as pykickstart's preferred --inst-langs; auth stays deprecated.
  t.deepEqual(list(second.report, 'warning'), ['top.ks:4: kickstart command "auth" is deprecated']);
  t.deepEqual(content(second.kickstart), content(first.kickstart));
  t.is(formatKickstart(second.kickstart), text);
});

test('formatKickstart quotes what needs quoting and keeps the order', (t) => {
  const { kickstart, report } = parse(
    ks(
      'rootpw --iscrypted "$6$a b\'c"',
      'repo --name=base --baseurl=http://m/os/',
      'bootloader --append="quiet #x" --timeout=0',
      '%post --erroronfail',
      "echo 'hi'",
      '%end',
      '%packages',
      '-@dial-up',
      'kernel*',
      '%end',
      '%pre',
      '%end',
    ),
  );
  t.deepEqual(report.entries, []);
  t.is(
    formatKickstart(kickstart),
    ks(
      "rootpw '$6$a b'\\''c' --iscrypted",
      'repo --name=base --baseurl=http://m/os/',
      "bootloader --append='quiet #x' --timeout=0",
      '',
      '%packages',
      'kernel*',
      '-@dial-up',
      '%end',
      '',
      '%post --erroronfail',
      "echo 'hi'",
      '%end',
      '',
      '%pre',
      '%end',
    ),
  );
});

// ---- errors: each test lists every error the kickstart must produce, with file and line.

test('unknown command, with a typo hint', (t) => {
  const { kickstart, report } = parse(ks('lang C.UTF-8', 'bootlader --timeout=1', 'frobnicate'));
  t.deepEqual(list(report), [
    'top.ks:2: unknown kickstart command "bootlader"',
    'top.ks:3: unknown kickstart command "frobnicate"',
  ]);
  t.deepEqual(
    report.errors.map((d) => d.hint),
    [
      'may be a typo of "bootloader"',
      `may be a typo; known commands: ${[...KNOWN_COMMANDS.keys()].join(', ')}`,
    ],
  );
  t.deepEqual(
    kickstart.commands.map((c) => c.name),
    ['lang'],
  );
});

test('options: missing value, unknown option, flag with value, choices', (t) => {
  const { kickstart, report } = parse(
    ks(
      'repo --name=base --baseurl',
      'repo --name=other --baseurl= --cost=1',
      'services --enabled --disabled=x',
      'selinux --enforcing --strict',
      'firewall --enabled=yes',
      'bootloader --location=floppy',
      'network --bootproto=dhcp --mtu=big',
    ),
  );
  t.deepEqual(list(report), [
    'top.ks:1: missing value for --baseurl',
    'top.ks:1: repo "base" needs --baseurl or --mirrorlist',
    'top.ks:2: missing value for --baseurl',
    'top.ks:2: repo "other" needs --baseurl or --mirrorlist',
    'top.ks:3: missing value for --enabled',
    'top.ks:4: unknown option --strict for selinux',
    'top.ks:5: --enabled takes no value',
    'top.ks:6: --location must be one of mbr, partition, none, boot, not "floppy"',
    'top.ks:7: --mtu needs a whole number, not "big"',
  ]);
  t.deepEqual(kickstart.commands, []);
  t.deepEqual(kickstart.repos, []);
});

test('repo needs --name and --baseurl or --mirrorlist; url needs --url or --mirrorlist', (t) => {
  const { kickstart, report } = parse(
    ks(
      'repo --baseurl=http://m/os/',
      'repo --name=updates',
      'repo --name=both --baseurl=http://a/ --mirrorlist=http://b/',
      'repo --name=ok --baseurl=http://m/os/',
      'repo --name=ok --mirrorlist=http://m/list',
      'url --proxy=http://proxy:3128',
    ),
  );
  t.deepEqual(list(report), [
    'top.ks:1: repo needs --name',
    'top.ks:2: repo "updates" needs --baseurl or --mirrorlist',
    'top.ks:3: repo takes only one of --baseurl, --mirrorlist',
    `top.ks:5: repo "ok" is defined twice (first at ${path.join(ROOT, 'top.ks')}:4)`,
    'top.ks:6: url needs --url or --mirrorlist',
  ]);
  t.deepEqual(
    kickstart.repos.map((r) => [r.line, r.name]),
    [[4, 'ok']],
  );
});

test('arguments: missing and extra positional arguments, exclusive and required options', (t) => {
  const { report } = parse(
    ks(
      'lang',
      'timezone Europe/Paris extra',
      'part --size=100',
      'rootpw --iscrypted',
      'rootpw --iscrypted --plaintext secret',
      'keyboard',
      'services',
      'user --groups=wheel',
      'zerombr now',
      'rootpw --lock',
    ),
  );
  t.deepEqual(list(report), [
    'top.ks:1: lang needs a language, e.g. "lang en_US.UTF-8"',
    'top.ks:2: unexpected argument "extra" for timezone',
    'top.ks:3: part needs a mount point, e.g. "part / --size=4096"',
    'top.ks:4: rootpw needs a password (or --lock)',
    'top.ks:5: rootpw takes only one of --iscrypted, --plaintext',
    'top.ks:6: keyboard needs a layout, --vckeymap= or --xlayouts=',
    'top.ks:7: services needs --enabled= or --disabled=',
    'top.ks:8: user needs --name',
    'top.ks:9: unexpected argument "now" for zerombr',
  ]);
  t.deepEqual(list(report, 'warning'), []);
});

test('non-integer bootloader timeout', (t) => {
  const { kickstart, report } = parse(
    ks('bootloader --timeout=soon --append=quiet', 'bootloader --timeout 5'),
  );
  t.deepEqual(list(report), ['top.ks:1: --timeout needs a whole number, not "soon"']);
  t.deepEqual(
    kickstart.commands.map((c) => c.options),
    [{ timeout: '5' }],
  );
});

test('unterminated quotes and a trailing backslash', (t) => {
  const { report } = parse(
    ks(
      'bootloader --append="quiet',
      'lang C.UTF-8',
      "rootpw 'secret",
      'timezone UTC \\',
      '%packages',
      '"kernel',
      '%end',
    ),
  );
  t.deepEqual(list(report), [
    'top.ks:1: unterminated double quote',
    'top.ks:3: unterminated single quote',
    'top.ks:4: backslash at end of line (line continuation is not supported)',
    'top.ks:6: unterminated double quote',
  ]);
});

test('missing %end is reported at the section header', (t) => {
  const packages = parse(ks('lang C.UTF-8', '%packages', 'kernel'));
  t.deepEqual(list(packages.report), ['top.ks:2: %packages section has no %end']);
  t.deepEqual(
    packages.kickstart.packages?.include.map((p) => p.name),
    ['kernel'],
  );

  const post = parse(ks('%post --erroronfail', 'echo hi'));
  t.deepEqual(list(post.report), ['top.ks:1: %post section has no %end']);

  // A section opened in an included file must end in that file.
  const included = parseTree({
    'top.ks': ks('%include part.ks', 'echo hi', '%end'),
    'part.ks': ks('lang C.UTF-8', '%post'),
  });
  t.deepEqual(list(included.report), [
    'part.ks:2: %post section has no %end',
    'top.ks:2: unknown kickstart command "echo"',
    'top.ks:3: %end without an open section',
  ]);
});

test('a section header inside an open section', (t) => {
  const { kickstart, report } = parse(
    ks(
      '%packages',
      'kernel',
      '%post',
      'echo hi',
      '%end',
      '%pre',
      'true',
      '%packages --nobase',
      'vim',
      '%end',
    ),
  );
  t.deepEqual(list(report), [
    'top.ks:3: %post inside an open %packages section; add %end before it',
    'top.ks:8: %packages inside an open %pre section; add %end before it',
  ]);
  // Recovery: the new header starts its section, so later lines are read in the right context.
  t.deepEqual(
    kickstart.scripts.map((s) => [s.kind, s.body]),
    [
      ['post', 'echo hi\n'],
      ['pre', 'true\n'],
    ],
  );
  t.deepEqual(
    kickstart.packages?.include.map((p) => p.name),
    ['kernel', 'vim'],
  );
});

test('a stray %end', (t) => {
  const { report } = parse(ks('lang C.UTF-8', '%end', '%packages', '%end', '%end'));
  t.deepEqual(list(report), [
    'top.ks:2: %end without an open section',
    'top.ks:5: %end without an open section',
  ]);
});

test('a missing %include file is reported at the including line', (t) => {
  const { kickstart, report } = parseTree({
    'top.ks': ks('lang C.UTF-8', '%include partials/missing.ks', '%include', '%ksappend /abs/gone.ks'),
  });
  t.deepEqual(list(report), [
    'top.ks:2: included file not found: /ks/partials/missing.ks',
    'top.ks:3: %include needs exactly one file name',
    'top.ks:4: included file not found: /abs/gone.ks',
  ]);
  t.deepEqual(kickstart.files, [path.join(ROOT, 'top.ks')]);
});

test('%include cycles name the chain', (t) => {
  const direct = parseTree({ 'top.ks': ks('lang C.UTF-8', '%include top.ks') });
  t.deepEqual(list(direct.report), ['top.ks:2: %include cycle: /ks/top.ks -> /ks/top.ks']);

  const indirect = parseTree({
    'top.ks': ks('%include a/one.ks'),
    'a/one.ks': ks('timezone UTC', '%include ../b/two.ks'),
    'b/two.ks': ks('%include ../a/one.ks', 'lang C.UTF-8'),
  });
  t.deepEqual(list(indirect.report), [
    'b/two.ks:1: %include cycle: /ks/top.ks -> /ks/a/one.ks -> /ks/b/two.ks -> /ks/a/one.ks',
  ]);
  // Everything outside the cycle is still read.
  t.deepEqual(
    indirect.kickstart.commands.map((c) => c.name),
    ['timezone', 'lang'],
  );
  t.deepEqual(
    indirect.kickstart.files.map((f) => path.relative(ROOT, f)),
    ['top.ks', 'a/one.ks', 'b/two.ks'],
  );
});

test('bad %packages, %pre and %post options and lines', (t) => {
  const { report } = parse(
    ks(
      '%packages --excludedocs --nodocs --retries=many',
      'vim emacs',
      '-',
      '@',
      '%end',
      '%pre --nochroot',
      '%end',
      '%post --interpreter',
      '%end',
      '%post extra',
      '%end',
      '%addon',
      '%end',
      '%bogus',
    ),
  );
  t.deepEqual(list(report), [
    'top.ks:1: unknown option --nodocs for %packages',
    'top.ks:1: --retries needs a whole number, not "many"',
    'top.ks:2: one package per line: unexpected "emacs" after "vim"',
    'top.ks:3: missing package name in "-"',
    'top.ks:4: missing package name in "@"',
    'top.ks:6: unknown option --nochroot for %pre',
    'top.ks:8: missing value for --interpreter',
    'top.ks:10: unexpected argument "extra" for %post',
    'top.ks:12: %addon needs the add-on name',
    'top.ks:14: unknown section %bogus',
  ]);
});

test('collects every error across files in one run', (t) => {
  const { report } = parseTree({
    'top.ks': ks(
      'lang C.UTF-8',
      'lnag C.UTF-8',
      'repo --name=base',
      'bootloader --timeout=x',
      '%include inc.ks',
      '%packages --bogus',
      'kernel',
      '%post',
      'echo "unterminated is fine in scripts',
      '%end',
      '%end',
      '%pre',
      'true',
    ),
    'inc.ks': ks('rootpw "open', '%include nowhere.ks', '%include top.ks'),
  });
  t.deepEqual(list(report), [
    'inc.ks:1: unterminated double quote',
    'inc.ks:2: included file not found: /ks/nowhere.ks',
    'inc.ks:3: %include cycle: /ks/top.ks -> /ks/inc.ks -> /ks/top.ks',
    'top.ks:2: unknown kickstart command "lnag"',
    'top.ks:3: repo "base" needs --baseurl or --mirrorlist',
    'top.ks:4: --timeout needs a whole number, not "x"',
    'top.ks:6: unknown option --bogus for %packages',
    'top.ks:8: %post inside an open %packages section; add %end before it',
    'top.ks:11: %end without an open section',
    'top.ks:12: %pre section has no %end',
  ]);
  for (const d of report.errors) t.truthy(d.file && d.line, d.message);
});
