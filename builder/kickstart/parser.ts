// Parser for the pykickstart syntax that livecd kickstarts use: commands, %include/%ksappend,
// %packages, %pre and %post. Every problem goes to a Report with its file and line; the parser
// never throws on bad input and keeps going, so one run shows every error in the kickstart.

import fs from 'node:fs';
import path from 'node:path';
import { normalizeImagePath, Report } from '../../common/index.ts';
import {
  KS_ANACONDA_COMMANDS,
  KS_COMMANDS,
  KS_REMOVED_COMMANDS,
  KS_SECTIONS,
  type KsCommandInfo,
  nearest,
  type OptionKind,
} from './commands.ts';
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
  /** Warn about every command that is valid kickstart but that the builder does not act on. */
  reportNotActedOn?: boolean;
  /** `ks check --strict`: implies reportNotActedOn, and every warning becomes an error. */
  strict?: boolean;
}

type Options = Record<string, string | true>;

interface Args {
  options: Options;
  positional: string[];
}

/** How a command (or section header) line is checked: pykickstart's facts plus the builder's own rules. */
interface CommandSpec extends KsCommandInfo {
  actedOn: boolean;
  /** Only one makes sense: a repeat replaces the earlier one, with a warning. */
  single?: boolean;
  /** Options pykickstart knows that the builder refuses: the reason (an error). */
  unsupported?: Readonly<Record<string, string>>;
  /** A requirement the option table cannot express; returns the error message when unmet. */
  require?: (args: Args) => string | undefined;
}

const METALINK = "the builder's dnf/apt configuration has no metalink support: use --baseurl or --mirrorlist";

// The commands the builder acts on, checked more strictly than pykickstart does. Option names
// follow pykickstart's (case-sensitive) spelling; what the builder cannot honour is refused here,
// e.g. repo/url --metalink. Every other command is checked against pykickstart's table only.
const BUILDER_SPECS: Record<string, Omit<CommandSpec, 'actedOn'>> = {
  bootloader: {
    single: true,
    // the builder honours every option pykickstart knows (append and timeout go to the boot menus)
    options: KS_COMMANDS.bootloader?.options,
    removedOptions: KS_COMMANDS.bootloader?.removedOptions,
  },
  keyboard: {
    single: true,
    options: { vckeymap: 'value', xlayouts: 'value', switch: 'value' },
    args: { min: 0, max: 1 },
    require: (a) =>
      a.positional.length === 0 && a.options.vckeymap === undefined && a.options.xlayouts === undefined
        ? 'keyboard needs a layout, --vckeymap= or --xlayouts='
        : undefined,
  },
  lang: {
    single: true,
    options: { addsupport: 'value' },
    args: { min: 1, max: 1, what: 'a language, e.g. "lang en_US.UTF-8"' },
  },
  repo: {
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
    unsupported: { metalink: METALINK },
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
    single: true,
    options: { iscrypted: 'flag', plaintext: 'flag', lock: 'flag', 'allow-ssh': 'flag' },
    args: { min: 0, max: 1 },
    exclusive: [['iscrypted', 'plaintext']],
    require: (a) =>
      a.positional.length === 0 && a.options.lock === undefined
        ? 'rootpw needs a password (or --lock)'
        : undefined,
  },
  services: {
    options: { enabled: 'value', disabled: 'value' },
    require: (a) =>
      a.options.enabled === undefined && a.options.disabled === undefined
        ? 'services needs --enabled= or --disabled='
        : undefined,
  },
  timezone: {
    single: true,
    options: { utc: 'flag', nontp: 'flag', ntpservers: 'value' },
    aliases: KS_COMMANDS.timezone?.aliases,
    deprecatedOptions: KS_COMMANDS.timezone?.deprecatedOptions,
    args: { min: 1, max: 1, what: 'a time zone, e.g. "timezone --utc Europe/Paris"' },
  },
  url: {
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
    unsupported: { metalink: METALINK },
    exclusive: [['url', 'mirrorlist']],
    require: (a) =>
      a.options.url === undefined && a.options.mirrorlist === undefined
        ? 'url needs --url or --mirrorlist'
        : undefined,
  },
  user: {
    options: KS_COMMANDS.user?.options,
    exclusive: [['iscrypted', 'plaintext']],
    require: (a) => (a.options.name === undefined ? 'user needs --name' : undefined),
  },
};

/** Every command the parser accepts: the builder's specs first, pykickstart's table for the rest. */
const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map([
  ...Object.entries(KS_COMMANDS).map(([name, info]): [string, CommandSpec] => [
    name,
    { ...info, actedOn: false },
  ]),
  ...Object.entries(BUILDER_SPECS).map(([name, spec]): [string, CommandSpec] => [
    name,
    { ...spec, actedOn: true },
  ]),
]);

/** Names that stand for another command: the parsed command keeps the canonical name. */
const COMMAND_ALIASES = new Map([['partition', 'part']]);

export type KsCommandStatus = 'current' | 'deprecated' | 'removed';

/** Every command name pykickstart knows (current, deprecated and removed), and whether the builder acts on it. */
export const KNOWN_COMMANDS: ReadonlyMap<string, { actedOn: boolean; status: KsCommandStatus }> = new Map(
  [...COMMANDS.keys(), ...Object.keys(KS_REMOVED_COMMANDS)].sort().map((name) => {
    const spec = COMMANDS.get(COMMAND_ALIASES.get(name) ?? name);
    const status: KsCommandStatus = !spec ? 'removed' : spec.deprecated ? 'deprecated' : 'current';
    return [name, { actedOn: spec?.actedOn ?? false, status }];
  }),
);

/** Sections the builder reads; the others are checked and skipped with a warning. */
const USED_SECTIONS = new Set(['%packages', '%pre', '%post']);
const SECTION_HEADERS = new Set(Object.keys(KS_SECTIONS));

/** Group options a %packages line may carry; dnf's group install has no use for them here. */
const GROUP_OPTIONS = new Set(['--nodefaults', '--optional']);

/** Option spellings written by formatKickstart where pykickstart prefers another than the stored key. */
const PREFERRED_SPELLING: Readonly<Record<string, string>> = {
  instLangs: 'inst-langs',
  excludeWeakdeps: 'exclude-weakdeps',
};

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

/** What parseArgs needs to know about a command or section header. */
type ArgRules = Pick<
  CommandSpec,
  'options' | 'aliases' | 'deprecatedOptions' | 'removedOptions' | 'unsupported'
>;

function parseArgs(tokens: string[], rules: ArgRules, what: string, at: SourcePos, report: Report): Args {
  const args: Args = { options: {}, positional: [] };
  const spec = rules.options;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (!token.startsWith('--') || token === '--') {
      args.positional.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const spelled = eq < 0 ? token.slice(2) : token.slice(2, eq);
    let value = eq < 0 ? undefined : token.slice(eq + 1);
    const name = rules.aliases && Object.hasOwn(rules.aliases, spelled) ? rules.aliases[spelled] : spelled;
    let kind: OptionKind | undefined;
    if (spec === undefined) kind = value === undefined ? 'flag' : 'value';
    else kind = name !== undefined && Object.hasOwn(spec, name) ? spec[name] : undefined;

    if (rules.unsupported && Object.hasOwn(rules.unsupported, spelled)) {
      report.error(`--${spelled} is not supported by the builder for ${what}`, {
        ...at,
        hint: rules.unsupported[spelled],
      });
      continue;
    }
    if (name === undefined || kind === undefined) {
      const removed = rules.removedOptions?.[spelled];
      if (removed !== undefined && Object.hasOwn(rules.removedOptions ?? {}, spelled)) {
        report.error(`option --${spelled} of ${what} was removed from kickstart`, { ...at, hint: removed });
        continue;
      }
      const known = [...Object.keys(spec ?? {}), ...Object.keys(rules.aliases ?? {})];
      const near = nearest(spelled, known);
      report.error(`unknown option --${spelled} for ${what}`, {
        ...at,
        ...(near !== undefined ? { hint: `did you mean --${near}?` } : {}),
      });
      continue;
    }
    const deprecated = rules.deprecatedOptions;
    if (deprecated && Object.hasOwn(deprecated, spelled)) {
      report.warning(`option --${spelled} of ${what} is deprecated`, { ...at, hint: deprecated[spelled] });
    }
    if (kind === 'flag') {
      if (value === undefined) args.options[name] = true;
      else report.error(`--${spelled} takes no value`, { ...at, hint: `write --${spelled} alone` });
      continue;
    }
    if (kind === 'optional') {
      // pykickstart's nargs="?": the value only counts when written --opt=VALUE here.
      args.options[name] = value === undefined || value === '' ? true : value;
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
      report.error(`missing value for --${spelled}`, { ...at, hint: `write --${spelled}=VALUE` });
    } else if (kind === 'int' && !/^-?\d+$/.test(value)) {
      report.error(`--${spelled} needs a whole number, not "${value}"`, at);
    } else if (typeof kind !== 'string' && !kind.includes(value)) {
      report.error(`--${spelled} must be one of ${kind.join(', ')}, not "${value}"`, at);
    } else {
      args.options[name] = value;
    }
  }
  return args;
}

function unknownCommandHint(word: string): string {
  const known = [...KNOWN_COMMANDS.keys()];
  const near = nearest(word, known);
  if (near !== undefined) return `may be a typo of "${near}"`;
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
  | { kind: 'anaconda'; header: string; at: SourcePos }
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
    if (section && section.kind !== 'packages' && section.kind !== 'anaconda') {
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
    else if (section?.kind === 'anaconda') this.anacondaLine(first, rest, at);
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
    const near = nearest(name, [...SECTION_HEADERS, '%include', '%ksappend', '%end']);
    this.report.error(`unknown section ${name}`, {
      ...at,
      hint:
        near !== undefined
          ? `did you mean ${near}?`
          : `known: ${[...SECTION_HEADERS].join(', ')}, %include, %ksappend, %end`,
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
    const info = KS_SECTIONS[header] ?? {};
    let options: Options = {};
    if (header === '%addon') {
      // %addon NAME [options]: the options belong to the add-on, which pykickstart does not know.
      if (tokens.length === 0) this.report.error('%addon needs the add-on name', at);
    } else {
      const args = parseArgs(tokens, info, header, at, this.report);
      options = args.options;
      for (const arg of args.positional) this.report.error(`unexpected argument "${arg}" for ${header}`, at);
      this.checkExclusive(header, info.exclusive, options, at);
    }
    if (!USED_SECTIONS.has(header)) {
      this.report.warning(`section ${header} is not used by the builder`, at);
      this.section = { kind: header === '%anaconda' ? 'anaconda' : 'ignored', header, at };
      return;
    }
    if (header === '%packages') {
      // Several %packages sections merge: the first one's position stands for all of them.
      this.kickstart.packages ??= { ...at, options: {}, include: [], exclude: [] };
      Object.assign(this.kickstart.packages.options, options);
      this.section = { kind: 'packages', header, at, packages: this.kickstart.packages };
      return;
    }
    // a chroot %post's log lands in the image: an absolute path that stays below its root
    if (header === '%post' && options.nochroot !== true && typeof options.log === 'string')
      if (!options.log.startsWith('/') || normalizeImagePath(options.log) === undefined)
        this.report.error(`%post --log=${options.log} is not a path inside the image`, {
          ...at,
          hint: 'give an absolute path with no ".." above the root, e.g. --log=/root/ks-post.log',
        });
    const script: KsScript = {
      ...at,
      kind: header === '%pre' ? 'pre' : 'post',
      nochroot: options.nochroot === true,
      interpreter: typeof options.interpreter === 'string' ? options.interpreter : DEFAULT_INTERPRETER,
      erroronfail: options.erroronfail === true,
      ...(typeof options.log === 'string' ? { log: options.log } : {}),
      body: '',
    };
    this.section = { kind: 'script', header, at, script, lines: [] };
  }

  /** A line of the %anaconda section: pykickstart knows only pwpolicy there. */
  private anacondaLine(word: string, tokens: string[], at: SourcePos): void {
    const spec = KS_ANACONDA_COMMANDS[word];
    if (!spec) {
      const near = nearest(word, Object.keys(KS_ANACONDA_COMMANDS));
      this.report.error(`unknown %anaconda command "${word}"`, {
        ...at,
        hint: near !== undefined ? `may be a typo of "${near}"` : 'the %anaconda section only takes pwpolicy',
      });
      return;
    }
    const args = parseArgs(tokens, spec, word, at, this.report);
    this.checkCommand(word, { ...spec, actedOn: false }, args, at);
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
      const removed = Object.hasOwn(KS_REMOVED_COMMANDS, word) ? KS_REMOVED_COMMANDS[word] : undefined;
      if (removed) {
        this.report.error(`kickstart command "${word}" was removed`, { ...at, hint: removed.removed });
        return;
      }
      this.report.error(`unknown kickstart command "${word}"`, { ...at, hint: unknownCommandHint(word) });
      return;
    }
    if (spec.deprecated !== undefined) {
      this.report.warning(`kickstart command "${word}" is deprecated`, { ...at, hint: spec.deprecated });
    }
    const mark = this.report.entries.length;
    const args = parseArgs(tokens, spec, name, at, this.report);
    this.checkCommand(name, spec, args, at);
    // An invalid command is left out, so the result only holds commands the builder can trust.
    if (this.report.entries.slice(mark).some((d) => d.severity === 'error')) return;

    const command: KsCommand = { ...at, name, ...args, actedOn: spec.actedOn };
    if (spec.single) this.replaceEarlier(command);
    this.kickstart.commands.push(command);
    if (name === 'repo') this.kickstart.repos.push(toRepo(command));
  }

  private checkExclusive(
    name: string,
    exclusive: CommandSpec['exclusive'],
    options: Options,
    at: SourcePos,
  ): void {
    for (const group of exclusive ?? []) {
      const given = group.filter((option) => options[option] !== undefined);
      if (given.length > 1) {
        this.report.error(`${name} takes only one of ${given.map((o) => `--${o}`).join(', ')}`, at);
      }
    }
  }

  private checkCommand(name: string, spec: CommandSpec, args: Args, at: SourcePos): void {
    const { min, max, what } = spec.args ?? { min: 0, max: 0 };
    if (args.positional.length < min) {
      this.report.error(`${name} needs ${what ?? `${min} argument(s)`}`, at);
    }
    for (const extra of args.positional.slice(max)) {
      this.report.error(`unexpected argument "${extra}" for ${name}`, at);
    }
    this.checkExclusive(name, spec.exclusive, args.options, at);
    const missing = (spec.required ?? []).filter((option) => args.options[option] === undefined);
    if (missing.length > 0) {
      this.report.error(`${name} needs ${missing.map((o) => `--${o}`).join(' and ')}`, at);
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

/** Adds the not-acted-on warnings and applies --strict, as `opts` asks. */
function finish(kickstart: Kickstart, report: Report, opts: Omit<ParseOptions, 'file'>): void {
  if (opts.reportNotActedOn || opts.strict) {
    for (const c of kickstart.commands) {
      if (c.actedOn) continue;
      report.warning(`command "${c.name}" is valid kickstart but the builder does not act on it`, {
        file: c.file,
        line: c.line,
        hint: 'it is kept in the flat kickstart and otherwise ignored',
      });
    }
  }
  if (opts.strict) {
    for (const d of report.entries) {
      if (d.severity !== 'warning') continue;
      d.severity = 'error';
      d.message += ' (--strict)';
    }
  }
}

export function parseKickstart(text: string, opts: ParseOptions): { kickstart: Kickstart; report: Report } {
  const parser = new KickstartParser(opts.readFile ?? readFromDisk);
  const top: Source = { name: opts.file, abs: path.resolve(opts.file) };
  parser.parseSource(text, top, [top]);
  finish(parser.kickstart, parser.report, opts);
  return { kickstart: parser.kickstart, report: parser.report };
}

export function parseKickstartFile(
  file: string,
  opts: Omit<ParseOptions, 'file' | 'readFile'> = {},
): { kickstart: Kickstart; report: Report } {
  const text = readFromDisk(path.resolve(file));
  if (text === undefined) {
    const report = new Report().error('cannot read the kickstart file', { file, hint: 'check the path' });
    return { kickstart: { commands: [], repos: [], scripts: [], files: [] }, report };
  }
  return parseKickstart(text, { ...opts, file });
}

// ---- formatting

/** Quotes a word for the tokenizer above; plain words stay as they are for readability. */
function quote(word: string): string {
  if (/^[A-Za-z0-9_@+=:,./^*?[\]-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function formatOptions(options: Options, spelling: Readonly<Record<string, string>> = {}): string {
  return Object.entries(options)
    .map(([key, value]) => {
      const name = Object.hasOwn(spelling, key) ? spelling[key] : key;
      return value === true ? ` --${name}` : ` --${name}=${quote(value)}`;
    })
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
    lines.push('', `%packages${formatOptions(ks.packages.options, PREFERRED_SPELLING)}`);
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
