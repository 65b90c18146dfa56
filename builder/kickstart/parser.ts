// Parser for the pykickstart syntax that livecd kickstarts use: commands, %include/%ksappend,
// %packages, %pre and %post. Every problem goes to a Report with its file and line; the parser
// never throws on bad input and keeps going, so one run shows every error in the kickstart.

import fs from 'node:fs';
import path from 'node:path';
import { Report } from '../../common/index.ts';
import type {
  Kickstart,
  KsCommand,
  KsPackageItem,
  KsPackages,
  KsRepo,
  KsScript,
  SourcePos,
} from './types.ts';

export interface ParseOptions {
  /** The kickstart's name as the user gave it: used in messages and to resolve %include. */
  file: string;
  /** Reads an included file; undefined means it is missing. Defaults to reading from disk. */
  readFile?: (absPath: string) => string | undefined;
}

type Options = Record<string, string | true>;

interface Args {
  options: Options;
  positional: string[];
}

/** flag: takes no value; value: any string; int: a whole number; a list: one of these words. */
type OptionKind = 'flag' | 'value' | 'int' | readonly string[];
type OptionSpec = Readonly<Record<string, OptionKind>>;

interface CommandSpec {
  actedOn: boolean;
  /** Undefined: options are passed through unchecked (auth/authconfig hand theirs to authconfig). */
  options?: OptionSpec;
  /** How many positional arguments the command takes (none when absent), and what they are. */
  args?: { min: number; max: number; what?: string };
  /** Only one makes sense: a repeat replaces the earlier one, with a warning. */
  single?: boolean;
  /** Groups of options of which at most one may be given. */
  exclusive?: readonly (readonly string[])[];
  /** A requirement the option table cannot express; returns the error message when unmet. */
  require?: (args: Args) => string | undefined;
}

// Option names follow pykickstart's (case-sensitive) spelling for the Fedora/EL releases that
// livecd kickstarts target. Only what the builder can honour is listed where it acts on the
// command: e.g. repo/url --metalink is rejected because the builder's dnf config has no metalink.
const COMMAND_SPECS: Record<string, CommandSpec> = {
  auth: { actedOn: false, args: { min: 0, max: Number.POSITIVE_INFINITY } },
  authconfig: { actedOn: false, args: { min: 0, max: Number.POSITIVE_INFINITY } },
  bootloader: {
    actedOn: true,
    single: true,
    options: {
      append: 'value',
      timeout: 'int',
      location: ['mbr', 'partition', 'none', 'boot'],
      driveorder: 'value',
      'boot-drive': 'value',
      password: 'value',
      iscrypted: 'flag',
      md5pass: 'value',
      leavebootorder: 'flag',
      disabled: 'flag',
      nombr: 'flag',
      extlinux: 'flag',
    },
  },
  clearpart: {
    actedOn: false,
    options: {
      all: 'flag',
      linux: 'flag',
      none: 'flag',
      list: 'value',
      drives: 'value',
      initlabel: 'flag',
      disklabel: 'value',
      cdl: 'flag',
    },
    exclusive: [['all', 'linux', 'none', 'list']],
  },
  device: { actedOn: false, options: { opts: 'value' }, args: { min: 0, max: 2 } },
  firewall: {
    actedOn: false,
    options: {
      enabled: 'flag',
      enable: 'flag',
      disabled: 'flag',
      disable: 'flag',
      port: 'value',
      trust: 'value',
      service: 'value',
      'remove-service': 'value',
      'use-system-defaults': 'flag',
      ssh: 'flag',
      smtp: 'flag',
      http: 'flag',
      ftp: 'flag',
      telnet: 'flag',
    },
    exclusive: [['enabled', 'enable', 'disabled', 'disable']],
  },
  keyboard: {
    actedOn: true,
    single: true,
    options: { vckeymap: 'value', xlayouts: 'value', switch: 'value' },
    args: { min: 0, max: 1 },
    require: (a) =>
      a.positional.length === 0 && a.options.vckeymap === undefined && a.options.xlayouts === undefined
        ? 'keyboard needs a layout, --vckeymap= or --xlayouts='
        : undefined,
  },
  lang: {
    actedOn: true,
    single: true,
    options: { addsupport: 'value' },
    args: { min: 1, max: 1, what: 'a language, e.g. "lang en_US.UTF-8"' },
  },
  network: {
    actedOn: false,
    options: {
      bootproto: ['dhcp', 'bootp', 'static', 'ibft', 'query'],
      device: 'value',
      hostname: 'value',
      ip: 'value',
      netmask: 'value',
      gateway: 'value',
      nameserver: 'value',
      onboot: 'value',
      activate: 'flag',
      'no-activate': 'flag',
      noipv4: 'flag',
      noipv6: 'flag',
      ipv6: 'value',
      ipv6gateway: 'value',
      nodefroute: 'flag',
      nodns: 'flag',
      mtu: 'int',
      ethtool: 'value',
      essid: 'value',
      wepkey: 'value',
      wpakey: 'value',
      dhcpclass: 'value',
      vlanid: 'int',
      interfacename: 'value',
      bondslaves: 'value',
      bondopts: 'value',
      bridgeslaves: 'value',
      bridgeopts: 'value',
      teamslaves: 'value',
      teamconfig: 'value',
      bindto: ['mac'],
    },
  },
  part: {
    actedOn: false,
    options: {
      size: 'int',
      grow: 'flag',
      maxsize: 'int',
      noformat: 'flag',
      onpart: 'value',
      usepart: 'value',
      ondisk: 'value',
      ondrive: 'value',
      asprimary: 'flag',
      fstype: 'value',
      fsoptions: 'value',
      fsprofile: 'value',
      mkfsoptions: 'value',
      label: 'value',
      recommended: 'flag',
      encrypted: 'flag',
      passphrase: 'value',
      resize: 'flag',
    },
    args: { min: 1, max: 1, what: 'a mount point, e.g. "part / --size=4096"' },
  },
  repo: {
    actedOn: true,
    options: {
      name: 'value',
      baseurl: 'value',
      mirrorlist: 'value',
      cost: 'int',
      excludepkgs: 'value',
      includepkgs: 'value',
      proxy: 'value',
      ignoregroups: ['true', 'false'],
      noverifyssl: 'flag',
      sslcacert: 'value',
      sslclientcert: 'value',
      sslclientkey: 'value',
      install: 'flag',
    },
    exclusive: [['baseurl', 'mirrorlist']],
    require: (a) => {
      if (a.options.name === undefined) return 'repo needs --name';
      if (a.options.baseurl === undefined && a.options.mirrorlist === undefined) {
        return `repo "${a.options.name}" needs --baseurl or --mirrorlist`;
      }
      return undefined;
    },
  },
  rootpw: {
    actedOn: true,
    single: true,
    options: { iscrypted: 'flag', plaintext: 'flag', lock: 'flag', 'allow-ssh': 'flag' },
    args: { min: 0, max: 1 },
    exclusive: [['iscrypted', 'plaintext']],
    require: (a) =>
      a.positional.length === 0 && a.options.lock === undefined
        ? 'rootpw needs a password (or --lock)'
        : undefined,
  },
  selinux: {
    actedOn: false,
    single: true,
    options: { enforcing: 'flag', permissive: 'flag', disabled: 'flag' },
    exclusive: [['enforcing', 'permissive', 'disabled']],
  },
  services: {
    actedOn: true,
    options: { enabled: 'value', disabled: 'value' },
    require: (a) =>
      a.options.enabled === undefined && a.options.disabled === undefined
        ? 'services needs --enabled= or --disabled='
        : undefined,
  },
  shutdown: { actedOn: false },
  reboot: { actedOn: false, options: { eject: 'flag', kexec: 'flag' } },
  poweroff: { actedOn: false },
  timezone: {
    actedOn: true,
    single: true,
    options: { utc: 'flag', isUtc: 'flag', nontp: 'flag', ntpservers: 'value' },
    args: { min: 1, max: 1, what: 'a time zone, e.g. "timezone --utc Europe/Paris"' },
  },
  url: {
    actedOn: true,
    single: true,
    options: {
      url: 'value',
      mirrorlist: 'value',
      proxy: 'value',
      noverifyssl: 'flag',
      sslcacert: 'value',
      sslclientcert: 'value',
      sslclientkey: 'value',
    },
    exclusive: [['url', 'mirrorlist']],
    require: (a) =>
      a.options.url === undefined && a.options.mirrorlist === undefined
        ? 'url needs --url or --mirrorlist'
        : undefined,
  },
  user: {
    actedOn: true,
    options: {
      name: 'value',
      groups: 'value',
      homedir: 'value',
      password: 'value',
      iscrypted: 'flag',
      plaintext: 'flag',
      lock: 'flag',
      shell: 'value',
      uid: 'int',
      gid: 'int',
      gecos: 'value',
    },
    exclusive: [['iscrypted', 'plaintext']],
    require: (a) => (a.options.name === undefined ? 'user needs --name' : undefined),
  },
  xconfig: {
    actedOn: false,
    options: {
      startxonboot: 'flag',
      defaultdesktop: 'value',
      driver: 'value',
      depth: 'int',
      resolution: 'value',
      videoram: 'value',
      monitor: 'value',
      noprobe: 'flag',
      hsync: 'value',
      vsync: 'value',
    },
  },
  skipx: { actedOn: false },
  zerombr: { actedOn: false },
};
const COMMANDS = new Map(Object.entries(COMMAND_SPECS));

const COMMAND_ALIASES = new Map([['partition', 'part']]);

export const KNOWN_COMMANDS: ReadonlyMap<string, { actedOn: boolean }> = new Map(
  [...COMMANDS.keys(), ...COMMAND_ALIASES.keys()].sort().map((name) => {
    const spec = COMMANDS.get(COMMAND_ALIASES.get(name) ?? name);
    return [name, { actedOn: spec?.actedOn ?? false }];
  }),
);

const PACKAGES_OPTIONS: OptionSpec = {
  excludedocs: 'flag',
  nobase: 'flag',
  nocore: 'flag',
  ignoremissing: 'flag',
  default: 'flag',
  instLangs: 'value',
  multilib: 'flag',
  excludeWeakdeps: 'flag',
  retries: 'int',
  timeout: 'int',
};

const SCRIPT_OPTIONS: Readonly<Record<KsScript['kind'], OptionSpec>> = {
  pre: { interpreter: 'value', erroronfail: 'flag', log: 'value' },
  post: { interpreter: 'value', erroronfail: 'flag', log: 'value', nochroot: 'flag' },
};

/** Sections pykickstart knows that the builder skips (body up to %end is dropped). */
const IGNORED_SECTIONS = new Set(['%pre-install', '%onerror', '%traceback', '%addon', '%anaconda']);
const SECTION_HEADERS = new Set(['%packages', '%pre', '%post', ...IGNORED_SECTIONS]);

/** Group options a %packages line may carry; dnf's group install has no use for them here. */
const GROUP_OPTIONS = new Set(['--nodefaults', '--optional']);

const DEFAULT_INTERPRETER = '/bin/sh';

// ---- tokenizing

/**
 * Splits a line the way pykickstart does (shlex, POSIX mode, with comments): single quotes are
 * literal, double quotes honour `\"` and `\\`, a backslash outside quotes escapes the next
 * character, and `#` starts a comment only at the start of a token.
 */
function tokenize(line: string): { tokens: string[]; error?: string } {
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let i = 0;
  while (i < line.length) {
    const c = line.charAt(i);
    if (/\s/.test(c)) {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
      i++;
      continue;
    }
    if (c === '#' && !inToken) break;
    inToken = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return { tokens, error: 'unterminated single quote' };
      current += line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return { tokens, error: 'unterminated double quote' };
        const d = line.charAt(i);
        if (d === '"') break;
        const next = line.charAt(i + 1);
        if (d === '\\' && (next === '"' || next === '\\')) {
          current += next;
          i += 2;
        } else {
          current += d;
          i++;
        }
      }
      i++;
    } else if (c === '\\') {
      // pykickstart has no line continuation: a backslash must escape something on this line.
      if (i + 1 >= line.length)
        return { tokens, error: 'backslash at end of line (line continuation is not supported)' };
      current += line.charAt(i + 1);
      i += 2;
    } else {
      current += c;
      i++;
    }
  }
  if (inToken) tokens.push(current);
  return { tokens };
}

/** The first whitespace-separated word, untokenized: how section bodies spot %end and headers. */
function firstWord(line: string): string {
  return line.trim().split(/\s+/, 1)[0] ?? '';
}

function parseArgs(
  tokens: string[],
  spec: OptionSpec | undefined,
  what: string,
  at: SourcePos,
  report: Report,
): Args {
  const args: Args = { options: {}, positional: [] };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (!token.startsWith('--') || token === '--') {
      args.positional.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const name = eq < 0 ? token.slice(2) : token.slice(2, eq);
    let value = eq < 0 ? undefined : token.slice(eq + 1);
    let kind: OptionKind | undefined;
    if (spec === undefined) kind = value === undefined ? 'flag' : 'value';
    else kind = Object.hasOwn(spec, name) ? spec[name] : undefined;

    if (kind === undefined) {
      report.error(`unknown option --${name} for ${what}`, at);
      continue;
    }
    if (kind === 'flag') {
      if (value === undefined) args.options[name] = true;
      else report.error(`--${name} takes no value`, { ...at, hint: `write --${name} alone` });
      continue;
    }
    if (value === undefined) {
      const next = tokens[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        value = next;
        i++;
      }
    }
    if (value === undefined || value === '') {
      report.error(`missing value for --${name}`, { ...at, hint: `write --${name}=VALUE` });
    } else if (kind === 'int' && !/^-?\d+$/.test(value)) {
      report.error(`--${name} needs a whole number, not "${value}"`, at);
    } else if (typeof kind !== 'string' && !kind.includes(value)) {
      report.error(`--${name} must be one of ${kind.join(', ')}, not "${value}"`, at);
    } else {
      args.options[name] = value;
    }
  }
  return args;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

function unknownCommandHint(word: string): string {
  const known = [...KNOWN_COMMANDS.keys()];
  const nearest = known
    .map((name) => ({ name, distance: editDistance(name, word.toLowerCase()) }))
    .filter((c) => c.distance <= 2)
    .sort((a, b) => a.distance - b.distance)[0];
  if (nearest) return `may be a typo of "${nearest.name}"`;
  return `may be a typo; known commands: ${known.join(', ')}`;
}

// ---- parsing

interface Source {
  /** As shown to the user (relative paths stay relative). */
  name: string;
  abs: string;
}

type Section =
  | { kind: 'packages'; header: string; at: SourcePos; packages: KsPackages }
  | { kind: 'script'; header: string; at: SourcePos; script: KsScript; lines: string[] }
  | { kind: 'ignored'; header: string; at: SourcePos };

class KickstartParser {
  readonly report = new Report();
  readonly kickstart: Kickstart = { commands: [], repos: [], scripts: [], files: [] };
  private readonly readFile: (absPath: string) => string | undefined;
  private readonly filesRead = new Set<string>();
  private section: Section | undefined;

  constructor(readFile: (absPath: string) => string | undefined) {
    this.readFile = readFile;
  }

  /** `chain` is the %include path from the top file down to `source` (itself included). */
  parseSource(text: string, source: Source, chain: readonly Source[]): void {
    if (!this.filesRead.has(source.abs)) {
      this.filesRead.add(source.abs);
      this.kickstart.files.push(source.name);
    }
    // A file included inside %packages continues that section; any section it opens itself
    // must also end in it.
    const outer = this.section;
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    lines.forEach((raw, index) => {
      this.parseLine(raw.replace(/\r$/, ''), { file: source.name, line: index + 1 }, source, chain, outer);
    });
    const open = this.section;
    if (open && open !== outer) {
      this.report.error(`${open.header} section has no %end`, {
        ...open.at,
        hint: 'add %end after the last line of the section',
      });
      this.closeSection();
    }
  }

  private parseLine(
    raw: string,
    at: SourcePos,
    source: Source,
    chain: readonly Source[],
    outer?: Section,
  ): void {
    const section = this.section;
    if (section && section.kind !== 'packages') {
      // Script bodies are kept verbatim: their comments and quoting belong to the interpreter.
      const word = firstWord(raw);
      if (word !== '%end' && !SECTION_HEADERS.has(word)) {
        if (section.kind === 'script') section.lines.push(raw);
        return;
      }
    }
    const { tokens, error } = tokenize(raw);
    if (error !== undefined) {
      this.report.error(error, { ...at, hint: 'close the quote on the same line, or escape the character' });
      return;
    }
    const [first, ...rest] = tokens;
    if (first === undefined) return;
    if (raw.trimStart().startsWith('%')) this.directive(first, rest, at, source, chain, outer);
    else if (section?.kind === 'packages') this.packageLine(section.packages, tokens, at);
    else this.command(first, rest, at);
  }

  private directive(
    name: string,
    args: string[],
    at: SourcePos,
    source: Source,
    chain: readonly Source[],
    outer: Section | undefined,
  ): void {
    if (name === '%end') {
      if (!this.section || this.section === outer) {
        const hint = outer
          ? `an included file cannot end the ${outer.header} section it is included in`
          : undefined;
        this.report.error('%end without an open section', { ...at, hint });
        return;
      }
      if (args.length > 0) this.report.error(`unexpected text after %end: ${args.join(' ')}`, at);
      this.closeSection();
      return;
    }
    if (name === '%include' || name === '%ksappend') {
      this.include(name, args, at, source, chain);
      return;
    }
    if (SECTION_HEADERS.has(name)) {
      if (this.section) {
        this.report.error(`${name} inside an open ${this.section.header} section; add %end before it`, at);
        this.closeSection();
      }
      this.openSection(name, args, at);
      return;
    }
    this.report.error(`unknown section ${name}`, {
      ...at,
      hint: `known: %packages, %pre, %post, %include, %ksappend, %end, ${[...IGNORED_SECTIONS].join(', ')}`,
    });
  }

  private include(
    directive: string,
    args: string[],
    at: SourcePos,
    source: Source,
    chain: readonly Source[],
  ): void {
    const [target] = args;
    if (target === undefined || args.length > 1) {
      this.report.error(`${directive} needs exactly one file name`, at);
      return;
    }
    const included: Source = {
      name: path.isAbsolute(target) ? target : path.join(path.dirname(source.name), target),
      abs: path.resolve(path.dirname(source.abs), target),
    };
    if (chain.some((s) => s.abs === included.abs)) {
      const names = [...chain, included].map((s) => s.name).join(' -> ');
      this.report.error(`%include cycle: ${names}`, at);
      return;
    }
    const text = this.readFile(included.abs);
    if (text === undefined) {
      this.report.error(`included file not found: ${included.name}`, {
        ...at,
        hint: `${directive} paths are relative to the directory of ${source.name}`,
      });
      return;
    }
    this.parseSource(text, included, [...chain, included]);
  }

  private openSection(header: string, tokens: string[], at: SourcePos): void {
    if (IGNORED_SECTIONS.has(header)) {
      if (header === '%addon' && tokens.length === 0) this.report.error('%addon needs the add-on name', at);
      this.report.warning(`section ${header} is not used by the builder`, at);
      this.section = { kind: 'ignored', header, at };
      return;
    }
    const kind = header === '%packages' ? 'packages' : header === '%pre' ? 'pre' : 'post';
    const spec = kind === 'packages' ? PACKAGES_OPTIONS : SCRIPT_OPTIONS[kind];
    const { options, positional } = parseArgs(tokens, spec, header, at, this.report);
    for (const arg of positional) this.report.error(`unexpected argument "${arg}" for ${header}`, at);

    if (kind === 'packages') {
      // Several %packages sections merge: the first one's position stands for all of them.
      this.kickstart.packages ??= { ...at, options: {}, include: [], exclude: [] };
      Object.assign(this.kickstart.packages.options, options);
      this.section = { kind: 'packages', header, at, packages: this.kickstart.packages };
      return;
    }
    const script: KsScript = {
      ...at,
      kind,
      nochroot: options.nochroot === true,
      interpreter: typeof options.interpreter === 'string' ? options.interpreter : DEFAULT_INTERPRETER,
      erroronfail: options.erroronfail === true,
      ...(typeof options.log === 'string' ? { log: options.log } : {}),
      body: '',
    };
    this.section = { kind: 'script', header, at, script, lines: [] };
  }

  private closeSection(): void {
    const section = this.section;
    if (section?.kind === 'script') {
      section.script.body = section.lines.map((line) => `${line}\n`).join('');
      this.kickstart.scripts.push(section.script);
    }
    this.section = undefined;
  }

  private packageLine(packages: KsPackages, tokens: string[], at: SourcePos): void {
    const [first = '', ...rest] = tokens;
    const exclude = first.startsWith('-');
    const name = exclude ? first.slice(1) : first;
    const kind: KsPackageItem['kind'] = name.startsWith('@^')
      ? 'environment'
      : name.startsWith('@')
        ? 'group'
        : 'package';
    if (name.replace(/^@\^?/, '') === '') {
      this.report.error(`missing package name in "${first}"`, at);
      return;
    }
    for (const extra of rest) {
      if (kind !== 'package' && GROUP_OPTIONS.has(extra)) {
        this.report.warning(`group option ${extra} is not used by the builder`, at);
      } else {
        this.report.error(`one package per line: unexpected "${extra}" after "${first}"`, at);
        return;
      }
    }
    const item: KsPackageItem = { ...at, name, kind, glob: /[*?[]/.test(name) };
    (exclude ? packages.exclude : packages.include).push(item);
  }

  private command(word: string, tokens: string[], at: SourcePos): void {
    const name = COMMAND_ALIASES.get(word) ?? word;
    const spec = COMMANDS.get(name);
    if (!spec) {
      this.report.error(`unknown kickstart command "${word}"`, { ...at, hint: unknownCommandHint(word) });
      return;
    }
    const mark = this.report.entries.length;
    const args = parseArgs(tokens, spec.options, name, at, this.report);
    this.checkCommand(name, spec, args, at);
    // An invalid command is left out, so the result only holds commands the builder can trust.
    if (this.report.entries.slice(mark).some((d) => d.severity === 'error')) return;

    const command: KsCommand = { ...at, name, ...args, actedOn: spec.actedOn };
    if (spec.single) this.replaceEarlier(command);
    this.kickstart.commands.push(command);
    if (name === 'repo') this.kickstart.repos.push(toRepo(command));
  }

  private checkCommand(name: string, spec: CommandSpec, args: Args, at: SourcePos): void {
    const { min, max, what } = spec.args ?? { min: 0, max: 0 };
    if (args.positional.length < min) {
      this.report.error(`${name} needs ${what ?? `${min} argument(s)`}`, at);
    }
    for (const extra of args.positional.slice(max)) {
      this.report.error(`unexpected argument "${extra}" for ${name}`, at);
    }
    for (const group of spec.exclusive ?? []) {
      const given = group.filter((option) => args.options[option] !== undefined);
      if (given.length > 1) {
        this.report.error(`${name} takes only one of ${given.map((o) => `--${o}`).join(', ')}`, at);
      }
    }
    const unmet = spec.require?.(args);
    if (unmet !== undefined) this.report.error(unmet, at);

    if (name === 'repo') {
      const earlier = this.kickstart.repos.find((r) => r.name === args.options.name);
      if (earlier) {
        this.report.error(
          `repo "${earlier.name}" is defined twice (first at ${earlier.file}:${earlier.line})`,
          at,
        );
      }
    }
  }

  private replaceEarlier(command: KsCommand): void {
    const index = this.kickstart.commands.findIndex((c) => c.name === command.name);
    const earlier = this.kickstart.commands[index];
    if (!earlier) return;
    this.report.warning(
      `${command.name} given more than once; the one at ${earlier.file}:${earlier.line} is ignored`,
      {
        file: command.file,
        line: command.line,
      },
    );
    this.kickstart.commands.splice(index, 1);
  }
}

function toRepo(command: KsCommand): KsRepo {
  const { name, baseurl, mirrorlist, ...options } = command.options;
  return {
    file: command.file,
    line: command.line,
    name: typeof name === 'string' ? name : '',
    ...(typeof baseurl === 'string' ? { baseurl } : {}),
    ...(typeof mirrorlist === 'string' ? { mirrorlist } : {}),
    options,
  };
}

function readFromDisk(absPath: string): string | undefined {
  try {
    return fs.readFileSync(absPath, 'utf8');
  } catch {
    return undefined;
  }
}

export function parseKickstart(text: string, opts: ParseOptions): { kickstart: Kickstart; report: Report } {
  const parser = new KickstartParser(opts.readFile ?? readFromDisk);
  const top: Source = { name: opts.file, abs: path.resolve(opts.file) };
  parser.parseSource(text, top, [top]);
  return { kickstart: parser.kickstart, report: parser.report };
}

export function parseKickstartFile(file: string): { kickstart: Kickstart; report: Report } {
  const text = readFromDisk(path.resolve(file));
  if (text === undefined) {
    const report = new Report().error('cannot read the kickstart file', { file, hint: 'check the path' });
    return { kickstart: { commands: [], repos: [], scripts: [], files: [] }, report };
  }
  return parseKickstart(text, { file });
}

// ---- formatting

/** Quotes a word for the tokenizer above; plain words stay as they are for readability. */
function quote(word: string): string {
  if (/^[A-Za-z0-9_@+=:,./^*?[\]-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function formatOptions(options: Options): string {
  return Object.entries(options)
    .map(([name, value]) => (value === true ? ` --${name}` : ` --${name}=${quote(value)}`))
    .join('');
}

function scriptOptions(script: KsScript): Options {
  const options: Options = {};
  if (script.nochroot) options.nochroot = true;
  if (script.interpreter !== DEFAULT_INTERPRETER) options.interpreter = script.interpreter;
  if (script.erroronfail) options.erroronfail = true;
  if (script.log !== undefined) options.log = script.log;
  return options;
}

/**
 * Turn a parsed kickstart back into text: used to write the flat kickstart. Repos are rendered
 * from `commands` (where they keep their place); `repos` is only a typed view of them.
 */
export function formatKickstart(ks: Kickstart): string {
  const lines = ks.commands.map(
    (c) => [c.name, ...c.positional.map(quote)].join(' ') + formatOptions(c.options),
  );
  if (ks.packages) {
    lines.push('', `%packages${formatOptions(ks.packages.options)}`);
    for (const item of ks.packages.include) lines.push(quote(item.name));
    for (const item of ks.packages.exclude) lines.push(`-${quote(item.name)}`);
    lines.push('%end');
  }
  for (const script of ks.scripts) {
    lines.push('', `%${script.kind}${formatOptions(scriptOptions(script))}`);
    // The body ends with a newline when it has lines; join adds that one back.
    if (script.body !== '') lines.push(script.body.endsWith('\n') ? script.body.slice(0, -1) : script.body);
    lines.push('%end');
  }
  return `${lines.join('\n')}\n`;
}
