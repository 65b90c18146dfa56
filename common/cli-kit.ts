// The command-line kit every hvnode CLI uses, so that they all behave alike: subcommands (and
// groups of them), --help with EXAMPLES and EXIT STATUS, --version, positional arguments checked
// against the command's table, "did you mean" for mistyped commands and options, JSON error
// objects with --json, stubs that say "not built yet" (exit 70), and the checks of input and
// output paths (`-` is standard input/output). Built on node:util parseArgs (no dependency,
// runs on Node 18).

import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { cliMode, dataError, ExitCode, HvError, notBuiltYet } from './errors.ts';
import { replaceFile } from './files.ts';
import { runtimeVersion } from './version.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  summary: string;
  /** Usage and option lines shown by `PROG NAME --help`. */
  help?: string;
  options?: Options;
  /**
   * The positional arguments, e.g. `['ISO', 'TARGET']`; `[ISO]` is optional, `PATH...` takes one
   * or more, `[PATH...]` any number. More than the table allows is refused (exit 65). Absent: any.
   */
  args?: string[];
  /** Command lines shown under EXAMPLES (`# comment` after two spaces is fine). */
  examples?: string[];
  /** What each exit code means for this command; absent: the codes every hvnode CLI uses. */
  exitStatus?: [number, string][];
  /** Subcommands (`hvnode manifest write`): the command is a group, run by its subcommand's name. */
  commands?: Command[];
  /** Absent (and no subcommands): the command is not built yet (says so, exits 70). */
  run?: (args: Parsed) => Promise<number | undefined>;
}

export interface Program {
  prog: string;
  summary: string;
  version: string;
  commands: Command[];
  examples?: string[];
  /** Environment variables the program reads: [NAME, meaning]. */
  environment?: [string, string][];
}

/** The exit codes of every hvnode CLI (README, "Exit codes"). */
export const EXIT_STATUS: [number, string][] = [
  [ExitCode.ok, 'success'],
  [ExitCode.failure, 'failure (a tool or a step failed)'],
  [ExitCode.precondition, 'a precondition is missing (not root, a tool not installed, ...)'],
  [ExitCode.dataError, 'invalid input: an argument, option, file or its content'],
  [ExitCode.software, 'not built yet, or an internal error'],
];

/** Options every command takes (besides its own). */
const BUILTIN: Options = { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } };

/** The same option for the same thing in every command. */
export const STD_OPTIONS = {
  out: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  force: { type: 'boolean', short: 'f' },
  verbose: { type: 'boolean', short: 'v' },
  'dry-run': { type: 'boolean', short: 'n' },
} as const satisfies Options;

// ---- help text

function fullName(prog: string, cmd: Command): string {
  return cmd.name ? `${prog} ${cmd.name}` : prog;
}

function section(title: string, lines: string[]): string {
  return lines.length > 0 ? `\n${title}\n${lines.map((l) => `  ${l}`).join('\n')}\n` : '';
}

function exitLines(status: [number, string][]): string[] {
  return status.map(([code, what]) => `${String(code).padEnd(3)} ${what}`);
}

function commandTable(cmds: Command[]): string {
  const width = Math.max(...cmds.map((c) => c.name.length));
  return cmds
    .map((c) => `  ${c.name.padEnd(width)}  ${c.summary}${isStub(c) ? ' (not built yet)' : ''}`)
    .join('\n');
}

function isStub(c: Command): boolean {
  return !c.run && !(c.commands && c.commands.some((s) => !isStub(s)));
}

export function usage(p: Program): string {
  const stub = p.commands.every(isStub);
  return `${p.prog}: ${p.summary}${stub ? ' (not built yet)' : ''}

Usage: ${p.prog} COMMAND [OPTIONS]

Commands:
${commandTable(p.commands)}

Options: --help, --version, --debug (stack traces)
Run "${p.prog} COMMAND --help" for a command's options.
${section('EXAMPLES', p.examples ?? [])}${section('EXIT STATUS', exitLines(stub ? [[ExitCode.software, 'not built yet']] : EXIT_STATUS))}${section(
  'ENVIRONMENT',
  (p.environment ?? []).map(([k, v]) => `${k.padEnd(20)} ${v}`),
)}`;
}

/** The page `PROG CMD --help` prints. */
export function commandHelp(prog: string, cmd: Command): string {
  const full = fullName(prog, cmd);
  const parts = [`${full}: ${cmd.summary}${isStub(cmd) ? ' (not built yet)' : ''}\n`];
  if (cmd.commands) parts.push(`\nUsage: ${full} COMMAND ...\n\nCommands:\n${commandTable(cmd.commands)}\n`);
  if (cmd.help) parts.push(`\n${cmd.help.trimEnd()}\n`);
  if (isStub(cmd))
    parts.push(`\nThis command is not built yet: it exits ${ExitCode.software} and changes nothing.\n`);
  parts.push(section('EXAMPLES', cmd.examples ?? []));
  const status = isStub(cmd) ? [[ExitCode.software, 'not built yet'] as [number, string]] : cmd.exitStatus;
  parts.push(section('EXIT STATUS', exitLines(status ?? EXIT_STATUS)));
  if (cmd.commands) parts.push(`\nRun "${full} COMMAND --help" for a command's options.\n`);
  return parts.join('');
}

// ---- "did you mean"

/** Levenshtein distance (insertions, deletions, substitutions; a swap of neighbours counts 1). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** The candidate closest to word, when it is close enough to be a typo of it. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  const limit = Math.max(1, Math.min(3, Math.floor((best?.length ?? 0) / 3)));
  if (best !== undefined && best.startsWith(word) && word.length >= 2) return best;
  return bestD <= limit ? best : undefined;
}

function unknown(kind: string, word: string, candidates: string[], where: string, help: string): HvError {
  const near = closest(word, candidates);
  return dataError(
    `unknown ${kind} "${word}"`,
    where,
    near ? `did you mean "${near}"? (see "${help}")` : `see "${help}"`,
  );
}

// ---- parsing and dispatch

function longOptions(options: Options): string[] {
  return Object.keys(options).map((o) => `--${o}`);
}

function checkPositionals(full: string, spec: string[] | undefined, positionals: string[]): void {
  if (!spec) return;
  const hint = `see "${full} --help"`;
  const required = spec.filter((a) => !a.startsWith('['));
  const variadic = spec.some((a) => a.endsWith('...') || a.endsWith('...]'));
  if (positionals.length < required.length)
    throw dataError(`missing ${required[positionals.length]?.replace(/\.\.\.$/, '')}`, full, hint);
  if (!variadic && positionals.length > spec.length)
    throw dataError(
      `unexpected argument "${positionals[spec.length]}"${spec.length === 0 ? ` (${full} takes no arguments)` : ` (${full} takes ${spec.join(' ')})`}`,
      full,
      hint,
    );
}

export function parseCommandArgs(prog: string, cmd: Command, argv: string[]): Parsed {
  const full = fullName(prog, cmd);
  const options = { ...BUILTIN, ...(cmd.options ?? {}) };
  let parsed: Parsed;
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    parsed = { values: values as Parsed['values'], positionals };
  } catch (err) {
    if (argv.includes('--json') && cmd.options?.json) cliMode.json = true;
    const e = err as NodeJS.ErrnoException;
    const opt = /^Unknown option '([^']+)'/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && opt)
      throw unknown('option', opt, longOptions(options), full, `${full} --help`);
    throw dataError(e.message.replace(/\. To specify a positional.*$/s, ''), full, `see "${full} --help"`);
  }
  if (parsed.values.json === true) cliMode.json = true;
  return parsed;
}

/** Runs the subcommand named by argv[0]; usage goes to stdout for --help, to stderr on an error. */
export async function dispatch(p: Program, argv: string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(usage(p));
    return ExitCode.dataError;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    const cmd = rest[0] === undefined ? undefined : p.commands.find((c) => c.name === rest[0]);
    process.stdout.write(cmd ? commandHelp(p.prog, cmd) : usage(p));
    if (p.commands.every(isStub) || (cmd && isStub(cmd))) return ExitCode.software;
    return ExitCode.ok;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${p.prog} ${p.version}\n`);
    return ExitCode.ok;
  }
  const cmd = p.commands.find((c) => c.name === name);
  if (!cmd) {
    if (name.startsWith('-'))
      throw unknown('option', name, ['--help', '--version', '--debug'], p.prog, `${p.prog} --help`);
    throw unknown(
      'command',
      name,
      p.commands.map((c) => c.name),
      p.prog,
      `${p.prog} --help`,
    );
  }
  return runCommand(p.prog, cmd, rest, p.version);
}

export async function runCommand(
  prog: string,
  cmd: Command,
  argv: string[],
  version = runtimeVersion(),
): Promise<number | undefined> {
  const full = fullName(prog, cmd);
  if (cmd.commands) {
    const [name, ...rest] = argv;
    if (name === undefined || name.startsWith('-')) {
      if (name === '--version') return runCommand(prog, { ...cmd, commands: undefined }, argv, version);
      const help = name === '--help' || name === '-h';
      if (name !== undefined && !help) throw unknown('option', name, ['--help'], full, `${full} --help`);
      (help ? process.stdout : process.stderr).write(commandHelp(prog, cmd));
      return help ? ExitCode.ok : ExitCode.dataError;
    }
    const sub = cmd.commands.find((c) => c.name === name);
    if (!sub)
      throw unknown(
        `${cmd.name} command`,
        name,
        cmd.commands.map((c) => c.name),
        full,
        `${full} --help`,
      );
    return runCommand(full, sub, rest, version);
  }
  const args = parseCommandArgs(prog, cmd, argv);
  if (args.values.help) {
    process.stdout.write(commandHelp(prog, cmd));
    return isStub(cmd) ? ExitCode.software : ExitCode.ok;
  }
  if (args.values.version) {
    process.stdout.write(`${prog.split(' ')[0]} ${version}\n`);
    return ExitCode.ok;
  }
  if (!cmd.run) throw notBuiltYet(full);
  checkPositionals(full, cmd.args, args.positionals);
  return cmd.run(args);
}

// ---- input and output paths

/** stat, or undefined when there is nothing there (also ENOTDIR: a file where a folder would be). */
function statOrNone(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** `-` is standard input or output. */
export const STDIO = '-';

/**
 * Reads a text input named on the command line (`-`: standard input). A missing file, a directory,
 * an unreadable or binary file is invalid input (exit 65) that names the path.
 */
export function readTextInput(path: string, where: string, what = 'file'): string {
  let data: Buffer;
  try {
    data = readFileSync(path === STDIO ? 0 : path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (err as Error).message;
    throw dataError(`${path}: ${why}`, where, `give the path of a ${what}`);
  }
  if (data.includes(0) || !isUtf8(data))
    throw dataError(`${path}: not a text file`, where, `give the path of a ${what} (text, UTF-8)`);
  return data.toString('utf8');
}

function isUtf8(data: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(data);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks an output file path before anything is written: not a directory, its folder exists.
 * `-` (standard output) is fine.
 */
export function checkOutFile(path: string, where: string, option = '--out'): void {
  if (path === STDIO) return;
  const st = statOrNone(path);
  if (st?.isDirectory())
    throw dataError(
      `${option} ${path}: is a directory`,
      where,
      `give a file name, e.g. ${option} ${path.replace(/\/+$/, '')}/out.ks`,
    );
  const dir = dirname(resolve(path));
  const dst = statOrNone(dir);
  if (!dst)
    throw dataError(`${option} ${path}: folder ${dirname(path)} does not exist`, where, 'create it first');
  if (!dst.isDirectory()) throw dataError(`${option} ${path}: ${dirname(path)} is not a folder`, where);
}

/** Checks an output folder (created when missing): what exists there must be a folder. */
export function checkOutDir(path: string, where: string, option = '--out'): void {
  const st = statOrNone(path);
  if (st && !st.isDirectory())
    throw dataError(
      `${option} ${path}: exists and is not a folder`,
      where,
      'give the path of a folder (it is created when missing)',
    );
  let parent = dirname(resolve(path));
  while (!statOrNone(parent)) parent = dirname(parent);
  if (!statOrNone(parent)?.isDirectory())
    throw dataError(`${option} ${path}: ${parent} is not a folder`, where, 'give the path of a folder');
}

/**
 * Writes text to path (`-`: standard output) atomically: a temporary file beside it, renamed
 * into place; nothing is left behind when the write fails.
 */
export function writeTextOutput(
  path: string,
  text: string,
  where: string,
  option = '--out',
  mode = 0o644,
): void {
  if (path === STDIO) {
    process.stdout.write(text);
    return;
  }
  checkOutFile(path, where, option);
  try {
    replaceFile(path, text, mode);
  } catch (err) {
    throw new HvError(`cannot write ${path}: ${(err as Error).message}`, {
      where,
      exitCode: ExitCode.failure,
      cause: err,
    });
  }
}
