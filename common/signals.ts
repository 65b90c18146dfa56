// Ctrl-C and SIGTERM for the CLIs that hold temporary state (a build's mounts and work tree,
// iso-to-disk's and iso-to-pxeboot's temp files): the one handler. The work gets an AbortSignal
// that stops its tools; its own finally blocks clean up; the error says what was interrupted;
// and when the process ends it re-raises the signal, so that the shell or the service manager
// sees it killed by that signal (status 130 for SIGINT, 143 for SIGTERM), not a plain failure.

import { HvError } from './errors.ts';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export interface InterruptOptions {
  where?: string;
  /** The error's message (default "interrupted by SIGINT"). */
  message?: (signal: NodeJS.Signals) => string;
  /** Called as the signal arrives (e.g. to say "stopping and cleaning up"). */
  onSignal?: (signal: NodeJS.Signals) => void;
}

/** An interruption; the process re-raises `signal` as it exits. */
export class InterruptedError extends HvError {
  constructor(
    readonly signal: NodeJS.Signals,
    message: string,
    where?: string,
  ) {
    super(message, { where });
    this.name = 'InterruptedError';
  }
}

/**
 * Runs fn with an AbortSignal that fires on SIGINT or SIGTERM. When one came, fn's rejection
 * (whatever the stopped tool said) becomes an InterruptedError, and the process ends killed by
 * that signal once its exit code is set and its error printed.
 */
export async function withInterrupt<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  o: InterruptOptions = {},
): Promise<T> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const stop = (sig: NodeJS.Signals) => {
    if (received) return; // the cleanup is under way: a second Ctrl-C doesn't cut it short
    received = sig;
    o.onSignal?.(sig);
    controller.abort(new InterruptedError(sig, o.message?.(sig) ?? `interrupted by ${sig}`, o.where));
  };
  for (const s of SIGNALS) process.on(s, stop);
  try {
    return await fn(controller.signal);
  } catch (err) {
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    for (const s of SIGNALS) process.off(s, stop);
    const sig = received;
    if (sig) process.once('exit', () => process.kill(process.pid, sig));
  }
}
