// The small command-line kit every hvnode CLI uses: subcommands, --help, option errors that
// name the option and point at --help. Built on node:util parseArgs (no dependency, runs on Node 18).

import { type ParseArgsConfig, parseArgs } from 'node:util';
import { dataError, ExitCode, notBuiltYet } from './errors.ts';

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
  /** Absent: the command is not built yet (says so, exits 70). */
  run?: (args: Parsed) => Promise<number | undefined>;
}

export interface Program {
  prog: string;
  summary: string;
  version: string;
  commands: Command[];
}

export function usage(p: Program): string {
  const width = Math.max(...p.commands.map((c) => c.name.length));
  const lines = p.commands.map(
    (c) => `  ${c.name.padEnd(width)}  ${c.summary}${c.run ? '' : ' (not built yet)'}`,
  );
  return `${p.prog}: ${p.summary}\n\nUsage: ${p.prog} COMMAND [OPTIONS]\n\nCommands:\n${lines.join('\n')}\n\nOptions: --help, --version, --debug (stack traces)\nRun "${p.prog} COMMAND --help" for a command's options.\n`;
}

export function parseCommandArgs(prog: string, cmd: Command, argv: string[]): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, ...(cmd.options ?? {}) },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    const full = fullName(prog, cmd);
    throw dataError(
      (err as Error).message.replace(/\. To specify a positional.*$/s, ''),
      full,
      `see "${full} --help"`,
    );
  }
}

/** Runs the subcommand named by argv[0] (or a single-command program's only command). */
export async function dispatch(p: Program, argv: string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(p));
    return name === undefined ? ExitCode.dataError : ExitCode.ok;
  }
  if (name === '--version') {
    process.stdout.write(`${p.prog} ${p.version}\n`);
    return ExitCode.ok;
  }
  const cmd = p.commands.find((c) => c.name === name);
  if (!cmd) {
    throw dataError(
      `unknown command "${name}"`,
      p.prog,
      `commands: ${p.commands.map((c) => c.name).join(', ')}`,
    );
  }
  return runCommand(p.prog, cmd, rest);
}

export async function runCommand(prog: string, cmd: Command, argv: string[]): Promise<number | undefined> {
  const args = parseCommandArgs(prog, cmd, argv);
  const full = fullName(prog, cmd);
  if (args.values.help) {
    process.stdout.write(`${full}: ${cmd.summary}\n${cmd.help ? `\n${cmd.help.trimEnd()}\n` : ''}`);
    return ExitCode.ok;
  }
  if (!cmd.run) throw notBuiltYet(full);
  return cmd.run(args);
}

/** `prog cmd`, or just `prog` for a single-command program (whose command has no name). */
function fullName(prog: string, cmd: Command): string {
  return cmd.name ? `${prog} ${cmd.name}` : prog;
}
