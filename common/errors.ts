// User-facing errors and validation reports, shared by every hvnode CLI (build host and node).
// A failure is a value that says what failed, where, and what to do next; CLIs print it on one
// or two lines and exit with a documented code. The stack trace is only for --debug.

export const ExitCode = {
  ok: 0,
  failure: 1,
  precondition: 2,
  dataError: 65,
  software: 70,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export type Severity = 'error' | 'warning';

/** One problem found while validating some input (a kickstart, a profile, a rule file, ...). */
export interface Diagnostic {
  severity: Severity;
  message: string;
  /** File the problem is in, as the user named it. */
  file?: string;
  line?: number;
  column?: number;
  /** A path inside structured input, e.g. `/packages/3` in a YAML profile. */
  path?: string;
  /** A kernel command-line argument as written (`vlan=5000`): the place of a problem in a command line. */
  arg?: string;
  hint?: string;
}

/**
 * Every problem of one validation, not just the first (as Ignition's reports do). Sorted by
 * position when printed; fatal only when it holds an error.
 */
export class Report {
  readonly entries: Diagnostic[] = [];

  error(message: string, at: Omit<Diagnostic, 'severity' | 'message'> = {}): this {
    this.entries.push({ severity: 'error', message, ...at });
    return this;
  }

  warning(message: string, at: Omit<Diagnostic, 'severity' | 'message'> = {}): this {
    this.entries.push({ severity: 'warning', message, ...at });
    return this;
  }

  merge(other: Report): this {
    this.entries.push(...other.entries);
    return this;
  }

  get hasErrors(): boolean {
    return this.entries.some((d) => d.severity === 'error');
  }

  get errors(): Diagnostic[] {
    return this.sorted().filter((d) => d.severity === 'error');
  }

  get warnings(): Diagnostic[] {
    return this.sorted().filter((d) => d.severity === 'warning');
  }

  sorted(): Diagnostic[] {
    return [...this.entries].sort(
      (a, b) =>
        (a.file ?? '').localeCompare(b.file ?? '') ||
        (a.line ?? 0) - (b.line ?? 0) ||
        (a.column ?? 0) - (b.column ?? 0),
    );
  }

  /** Throws an HvError (exit 65) that carries every error when the report holds any. */
  throwIfErrors(what: string, hint?: string): void {
    if (this.hasErrors)
      throw new HvError(what, { exitCode: ExitCode.dataError, hint, diagnostics: this.errors });
  }
}

/** `FILE:LINE: severity: message` (the form compilers and editors understand). */
export function formatDiagnostic(d: Diagnostic): string {
  const place = [d.file, d.line, d.line !== undefined ? d.column : undefined].filter((x) => x !== undefined);
  if (d.arg !== undefined) place.unshift(d.arg);
  const where = place.length > 0 ? `${place.join(':')}: ` : '';
  const path = d.path ? ` (at ${d.path})` : '';
  const hint = d.hint ? `\n  hint: ${d.hint}` : '';
  return `${where}${d.severity}: ${d.message}${path}${hint}`;
}

export interface HvErrorOptions {
  where?: string;
  hint?: string;
  exitCode?: ExitCodeValue;
  diagnostics?: Diagnostic[];
  cause?: unknown;
}

/** An error meant for the user: what failed, where, and a hint. */
export class HvError extends Error {
  readonly where?: string;
  readonly hint?: string;
  readonly exitCode: ExitCodeValue;
  readonly diagnostics: Diagnostic[];

  constructor(what: string, opts: HvErrorOptions = {}) {
    super(what, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HvError';
    this.where = opts.where;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? ExitCode.failure;
    this.diagnostics = opts.diagnostics ?? [];
  }
}

/** Invalid input: exit 65. */
export function dataError(what: string, where?: string, hint?: string): HvError {
  return new HvError(what, { where, hint, exitCode: ExitCode.dataError });
}

/** A part of the product that no issue has asked for yet. */
export function notBuiltYet(what: string): HvError {
  return new HvError('not built yet', { where: what, exitCode: ExitCode.software });
}

/** The lines a CLI prints for an error (no stack unless debug). */
export function formatError(prog: string, err: unknown, debug: boolean): string {
  if (err instanceof HvError) {
    // `where` may already start with the program's name (`hvnode build`): don't say it twice
    const prefix = err.where?.startsWith(prog) ? err.where : [prog, err.where].filter(Boolean).join(': ');
    const lines = [`${prefix}: ${err.message}`];
    for (const d of err.diagnostics) lines.push(formatDiagnostic(d));
    if (err.hint) lines.push(`  hint: ${err.hint}`);
    if (debug && err.stack) lines.push(err.stack);
    return lines.join('\n');
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const lines = [`${prog}: internal error: ${e.message}`];
  lines.push(
    debug && e.stack ? e.stack : '  hint: run again with --debug for the stack trace, and report it',
  );
  return lines.join('\n');
}

/** Set by the CLI kit when the command was given --json: errors are then printed as JSON. */
export const cliMode = { json: false };

/** `{"error":{"message","where","hint","exitCode","diagnostics"}}` for --json callers. */
export function errorJson(prog: string, err: unknown): string {
  const e =
    err instanceof HvError
      ? {
          message: err.message,
          where: err.where ?? prog,
          hint: err.hint,
          exitCode: err.exitCode,
          diagnostics: err.diagnostics.length > 0 ? err.diagnostics : undefined,
        }
      : {
          message: `internal error: ${err instanceof Error ? err.message : String(err)}`,
          where: prog,
          exitCode: ExitCode.software,
        };
  return JSON.stringify({ error: e });
}

export function exitCodeOf(err: unknown): number {
  return err instanceof HvError ? err.exitCode : ExitCode.software;
}

/**
 * Runs a CLI's main function: prints user errors without a stack (unless --debug or
 * HVNODE_DEBUG=1) and sets the exit code.
 */
export async function runCli(
  prog: string,
  main: (argv: string[]) => Promise<number | undefined>,
): Promise<void> {
  const argv = process.argv.slice(2);
  const debug = argv.includes('--debug') || process.env.HVNODE_DEBUG === '1';
  try {
    process.exitCode = (await main(argv.filter((a) => a !== '--debug'))) ?? ExitCode.ok;
  } catch (err) {
    process.stderr.write(`${cliMode.json ? errorJson(prog, err) : formatError(prog, err, debug)}\n`);
    process.exitCode = exitCodeOf(err);
  }
}
