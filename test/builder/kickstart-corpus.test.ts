// The kickstart corpus under test/fixtures/kickstarts: valid kickstarts in the style of Fedora's
// spins and RHEL 9 / Rocky 9 installs that together use every command pykickstart knows, and
// a negative set with the error expected at each line.

import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { KS_COMMANDS } from '../../builder/kickstart/commands.ts';
import { KNOWN_COMMANDS, parseKickstart, parseKickstartFile } from '../../builder/kickstart/index.ts';

const CORPUS = path.resolve('test/fixtures/kickstarts');
const VALID = path.join(CORPUS, 'valid');
const INVALID = path.join(CORPUS, 'invalid');

const validFiles = fs
  .readdirSync(VALID)
  .filter((f) => f.endsWith('.ks'))
  .sort();

/** `NAME:LINE: message` for the diagnostics of one severity. */
function list(
  report: ReturnType<typeof parseKickstartFile>['report'],
  severity: 'error' | 'warning' = 'error',
) {
  const entries = severity === 'error' ? report.errors : report.warnings;
  return entries.map((d) => `${path.basename(d.file ?? '?')}:${d.line}: ${d.message}`);
}

test('every valid corpus file parses with zero errors', (t) => {
  t.true(validFiles.length >= 10);
  for (const file of validFiles) {
    const { report, kickstart } = parseKickstartFile(path.join(VALID, file));
    t.deepEqual(list(report), [], file);
    t.true(kickstart.commands.length > 0, file);
  }
});

test('the corpus uses every command of the table at least once', (t) => {
  const used = new Set<string>();
  for (const file of validFiles) {
    // Command words as written (part and partition both count), outside sections.
    let inSection = false;
    for (const line of fs.readFileSync(path.join(VALID, file), 'utf8').split('\n')) {
      const word = line.trim().split(/\s+/, 1)[0] ?? '';
      if (word === '%end') inSection = false;
      else if (word.startsWith('%') && word !== '%include' && word !== '%ksappend') inSection = true;
      else if (!inSection && word !== '' && !word.startsWith('#')) used.add(word);
    }
  }
  const missing = Object.keys(KS_COMMANDS).filter((name) => !used.has(name));
  t.deepEqual(missing, []);
  // ... and every current or deprecated name is in the table KNOWN_COMMANDS is built from.
  for (const [name, info] of KNOWN_COMMANDS) {
    if (info.status !== 'removed') t.true(Object.hasOwn(KS_COMMANDS, name), name);
  }
});

test('the corpus has the sections pykickstart knows', (t) => {
  const headers = new Set<string>();
  for (const file of validFiles) {
    for (const line of fs.readFileSync(path.join(VALID, file), 'utf8').split('\n')) {
      const word = line.trim().split(/\s+/, 1)[0] ?? '';
      if (word.startsWith('%')) headers.add(word);
    }
  }
  for (const h of [
    '%packages',
    '%pre',
    '%pre-install',
    '%post',
    '%onerror',
    '%traceback',
    '%addon',
    '%anaconda',
    '%include',
    '%end',
  ]) {
    t.true(headers.has(h), h);
  }
});

test('deprecated commands and options parse with pykickstart-style warnings', (t) => {
  const { report } = parseKickstartFile(path.join(VALID, 'rhel9-legacy-carryover.ks'));
  t.deepEqual(list(report), []);
  t.deepEqual(list(report, 'warning'), [
    'rhel9-legacy-carryover.ks:3: kickstart command "auth" is deprecated',
    'rhel9-legacy-carryover.ks:4: kickstart command "authconfig" is deprecated',
    'rhel9-legacy-carryover.ks:5: kickstart command "autostep" is deprecated',
    'rhel9-legacy-carryover.ks:6: kickstart command "method" is deprecated',
    'rhel9-legacy-carryover.ks:10: option --ntpservers of timezone is deprecated',
    'rhel9-legacy-carryover.ks:10: option --nontp of timezone is deprecated',
    'rhel9-legacy-carryover.ks:11: kickstart command "nvdimm" is deprecated',
    'rhel9-legacy-carryover.ks:12: kickstart command "nvdimm" is deprecated',
    'rhel9-legacy-carryover.ks:14: option --instLangs of %packages is deprecated',
    'rhel9-legacy-carryover.ks:14: option --excludeWeakdeps of %packages is deprecated',
    'rhel9-legacy-carryover.ks:15: group option --nodefaults is not used by the builder',
  ]);
  t.regex(report.warnings[0]?.hint ?? '', /authselect/);
});

const NEGATIVES: Record<string, string[]> = {
  'unknown-command.ks': [
    'unknown-command.ks:3: unknown kickstart command "autopat"',
    'unknown-command.ks:4: unknown kickstart command "frobnicate"',
  ],
  'unknown-option.ks': [
    'unknown-option.ks:3: unknown option --nohme for autopart',
    'unknown-option.ks:4: unknown option --hostnmae for network',
    'unknown-option.ks:5: unknown option --bogus for logvol',
  ],
  'removed-command.ks': [
    'removed-command.ks:2: kickstart command "install" was removed',
    'removed-command.ks:4: kickstart command "upgrade" was removed',
    'removed-command.ks:5: kickstart command "device" was removed',
    'removed-command.ks:6: kickstart command "multipath" was removed',
    'removed-command.ks:7: option --resolution of xconfig was removed from kickstart',
  ],
  'missing-end.ks': [
    'missing-end.ks:5: %post inside an open %packages section; add %end before it',
    'missing-end.ks:5: %post section has no %end',
  ],
  'bad-arity.ks': [
    'bad-arity.ks:2: lang needs a language, e.g. "lang en_US.UTF-8"',
    'bad-arity.ks:3: iscsiname needs an iSCSI initiator name',
    'bad-arity.ks:4: mount needs a device and a mount point, e.g. "mount /dev/vda1 /boot"',
    'bad-arity.ks:5: snapshot needs a thin logical volume, e.g. "snapshot vg0/root --name=pre --when=pre-install"',
    'bad-arity.ks:6: eula needs --agreed',
    'bad-arity.ks:7: unexpected argument "now" for skipx',
    'bad-arity.ks:8: sshkey needs a public key, e.g. sshkey --username=root "ssh-ed25519 AAAA..."',
    'bad-arity.ks:9: volgroup needs a volume group name and its physical volumes, e.g. "volgroup vg0 pv.01"',
  ],
  'unknown-section.ks': [
    'unknown-section.ks:3: unknown section %package',
    'unknown-section.ks:4: unknown kickstart command "vim"',
    'unknown-section.ks:5: %end without an open section',
    'unknown-section.ks:6: unknown option --chroot for %post',
    'unknown-section.ks:8: unknown option --nochroot for %pre',
  ],
};

for (const [file, expected] of Object.entries(NEGATIVES)) {
  test(`negative corpus: ${file}`, (t) => {
    const { report } = parseKickstartFile(path.join(INVALID, file));
    t.deepEqual(list(report), expected);
  });
}

test('the negative corpus is covered by the expectations above', (t) => {
  const files = fs.readdirSync(INVALID).filter((f) => f.endsWith('.ks'));
  t.deepEqual(files.sort(), Object.keys(NEGATIVES).sort());
});

test('hints: nearest names, and the reason a command was removed', (t) => {
  const hints = (file: string) =>
    parseKickstartFile(path.join(INVALID, file)).report.errors.map((d) => d.hint);
  t.deepEqual(hints('unknown-command.ks')[0], 'may be a typo of "autopart"');
  t.deepEqual(hints('unknown-option.ks').slice(0, 2), ['did you mean --nohome?', 'did you mean --hostname?']);
  t.regex(hints('removed-command.ks')[0] ?? '', /removed in Fedora 34/);
  t.deepEqual(hints('unknown-section.ks')[0], 'did you mean %packages?');
});

test('--strict turns warnings, and commands the builder ignores, into errors', (t) => {
  const text = 'lang en_US.UTF-8\nautopart --type=lvm\n%addon com_redhat_kdump --enable\n%end\n';
  const plain = parseKickstart(text, { file: 'x.ks' });
  t.deepEqual(
    plain.report.errors.map((d) => d.message),
    [],
  );
  t.deepEqual(
    plain.report.warnings.map((d) => [d.line, d.message]),
    [[3, 'section %addon is not used by the builder']],
  );
  const verbose = parseKickstart(text, { file: 'x.ks', reportNotActedOn: true });
  t.deepEqual(
    verbose.report.warnings.map((d) => [d.line, d.message]),
    [
      [2, 'command "autopart" is valid kickstart but the builder does not act on it'],
      [3, 'section %addon is not used by the builder'],
    ],
  );
  const strict = parseKickstart(text, { file: 'x.ks', strict: true });
  t.deepEqual(strict.report.warnings, []);
  t.deepEqual(
    strict.report.errors.map((d) => [d.line, d.message]),
    [
      [2, 'command "autopart" is valid kickstart but the builder does not act on it (--strict)'],
      [3, 'section %addon is not used by the builder (--strict)'],
    ],
  );
});

test('both spellings of options are accepted and stored under one name', (t) => {
  const spellings: [string, string, Record<string, string | true>][] = [
    ['%packages --inst-langs=en_US:de_DE', '%packages --instLangs=en_US:de_DE', { instLangs: 'en_US:de_DE' }],
    ['%packages --exclude-weakdeps', '%packages --excludeWeakdeps', { excludeWeakdeps: true }],
  ];
  for (const [preferred, other, options] of spellings) {
    for (const header of [preferred, other]) {
      const { kickstart, report } = parseKickstart(`${header}\nvim\n%end\n`, { file: 'x.ks' });
      t.deepEqual(list(report), [], header);
      t.deepEqual(kickstart.packages?.options, options, header);
    }
  }
  const pairs: [string, string, string, Record<string, string | true>][] = [
    ['timezone UTC --utc', 'timezone UTC --isUtc', 'timezone', { utc: true }],
    [
      'part / --size=100 --ondisk=sda',
      'partition / --size 100 --ondrive sda',
      'part',
      { size: '100', ondisk: 'sda' },
    ],
    ['part /b --onpart=sda1', 'part /b --usepart=sda1', 'part', { onpart: 'sda1' }],
    ['firewall --enabled', 'firewall --enable', 'firewall', { enabled: true }],
    ['firewall --disabled', 'firewall --disable', 'firewall', { disabled: true }],
    ['firstboot --enable', 'firstboot --enabled', 'firstboot', { enable: true }],
    ['firstboot --disable', 'firstboot --disabled', 'firstboot', { disable: true }],
  ];
  for (const [a, b, name, options] of pairs) {
    for (const line of [a, b]) {
      const { kickstart, report } = parseKickstart(`${line}\n`, { file: 'x.ks' });
      t.deepEqual(list(report), [], line);
      t.deepEqual(
        kickstart.commands.map((c) => [c.name, c.options]),
        [[name, options]],
        line,
      );
    }
  }
  // Script options: --log and --logfile; values with = or as the next word.
  for (const header of ['%post --log=/root/p.log', '%post --logfile /root/p.log']) {
    const { kickstart, report } = parseKickstart(`${header}\ntrue\n%end\n`, { file: 'x.ks' });
    t.deepEqual(list(report), [], header);
    t.is(kickstart.scripts[0]?.log, '/root/p.log', header);
  }
  // Deprecated or soon-deprecated spellings are accepted with a warning, never an error.
  const { report } = parseKickstart('timezone UTC --isUtc\n', { file: 'x.ks' });
  t.deepEqual(list(report, 'warning'), ['x.ks:1: option --isUtc of timezone is deprecated']);
});

test('the builder refuses what it cannot honour, with the reason', (t) => {
  const { report } = parseKickstart(
    'url --metalink=https://m/metalink\nrepo --name=a --metalink=https://m/x\n',
    {
      file: 'x.ks',
    },
  );
  t.deepEqual(list(report), [
    'x.ks:1: --metalink is not supported by the builder for url',
    'x.ks:1: url needs --url or --mirrorlist',
    'x.ks:2: --metalink is not supported by the builder for repo',
    'x.ks:2: repo "a" needs --baseurl or --mirrorlist',
  ]);
});

test('%anaconda lines are checked as pwpolicy commands', (t) => {
  const { report } = parseKickstart('%anaconda\npwpolicy root --minlen=x\npwpolcy user\n%end\n', {
    file: 'x.ks',
  });
  t.deepEqual(list(report), [
    'x.ks:2: --minlen needs a whole number, not "x"',
    'x.ks:3: unknown %anaconda command "pwpolcy"',
  ]);
});

test('hundreds of kickstarts and one of 50 concatenated corpora parse (speed is a bench figure, not a test)', (t) => {
  const texts = validFiles.map((f) => fs.readFileSync(path.join(VALID, f), 'utf8'));
  const big = Array.from({ length: 50 }, () => texts.join('\n')).join('\n');
  for (let i = 0; i < 300; i++) {
    parseKickstart(texts[i % texts.length] ?? '', {
      file: path.join(VALID, validFiles[i % validFiles.length] ?? ''),
    });
  }
  const { kickstart } = parseKickstart(big.replaceAll('%include fedora-repo.ks', ''), {
    file: path.join(VALID, 'big.ks'),
  });
  t.true(kickstart.commands.length > 1000);
});
