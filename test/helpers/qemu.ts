// Boots an image in QEMU (TCG: this machine has no usable KVM) with the serial port written to
// a file, and waits with a deadline for the node's ready line.

import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';

export interface BootOptions {
  /** Arguments that attach the boot medium, e.g. ['-cdrom', iso, '-boot', 'd']. */
  media: string[];
  serialLog: string;
  deadlineSeconds?: number;
  memoryMiB?: number;
  /** Extra QEMU arguments. */
  extra?: string[];
  /** Network arguments (default: `-nic none`, no network at all). */
  nic?: string[];
  /** After the ready line, also wait (within the deadline) for a line matching this. */
  alsoWaitFor?: RegExp;
  /** Boot with UEFI firmware (OVMF) instead of SeaBIOS; its variable store is a copy beside the serial log. */
  uefi?: boolean;
  /** Patterns to time in the serial log (e.g. the kernel's banner): BootResult.marks gives when each first showed. */
  marks?: Record<string, RegExp>;
  /** A guest reboot restarts the machine (default: QEMU exits, -no-reboot). */
  allowReboot?: boolean;
  /**
   * The serial port on QEMU's standard input and output (a terminal, e.g. a tmux pane, is then
   * the serial console; Ctrl-C goes to the guest), its output still written to serialLog.
   */
  serialOnStdio?: boolean;
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** pflash drives for OVMF; the variable store is copied so that runs do not share state. */
export function ovmfArgs(varsCopy: string): string[] {
  copyFileSync(OVMF_VARS, varsCopy);
  return [
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${varsCopy}`,
  ];
}

export interface BootResult {
  seconds: number;
  readyLines: string[];
  log: string;
  /** Seconds from QEMU's start to the first match of each of BootOptions.marks (absent: never matched). */
  marks: Record<string, number>;
}

export const READY_RE = /^hvnode: ready (\S+) (\S+)\r?$/gm;

/**
 * The serial log as a person reads it: without terminal control sequences. systemd's status
 * spinner shares the console and may leave an "erase line" (ESC [ K) just before our line.
 */
export function visibleText(log: string): string {
  return log.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, '').replace(/\r(?!\n)/g, '\n');
}

export function readyLinesOf(log: string): string[] {
  return [...visibleText(log).matchAll(READY_RE)].map((m) => m[0].replace(/\r$/, ''));
}

/**
 * How long the guest kernel's console log went silent and the stalls the kernel reported, e.g.
 * `kernel log silent 15.0 s from 27.9 s at most; soft lockup 26 s in modprobe`. With QEMU's
 * default translation cache most boots under TCG on the 2-core host stalled for 10-43 s right
 * after the switch to the image (see TCG_ACCEL); a stall the kernel does not report shows as a
 * long silence before the ready line.
 */
export function kernelStalls(log: string): string {
  const text = visibleText(log);
  let silence = { seconds: 0, from: 0 };
  let last: number | undefined;
  for (const m of text.matchAll(/^\[\s*(\d+\.\d+)\]/gm)) {
    const t = Number(m[1]);
    if (last !== undefined && t - last > silence.seconds) silence = { seconds: t - last, from: last };
    last = t;
  }
  const reported = [...text.matchAll(/soft lockup - CPU#\d+ stuck for (\d+)s! \[([^\]:]+)/g)].map(
    (m) => `soft lockup ${m[1]} s in ${m[2]}`,
  );
  const rcu = text.match(/rcu: INFO: \w+ (?:self-)?detected stalls?/g)?.length ?? 0;
  if (rcu > 0) reported.push(`${rcu} RCU stall report${rcu > 1 ? 's' : ''}`);
  return [
    `kernel log silent ${silence.seconds.toFixed(1)} s from ${silence.from.toFixed(1)} s at most`,
    ...reported,
  ].join('; ');
}

/**
 * TCG with a 128 MiB translation cache instead of QEMU's 1 GiB. QEMU keeps a guest page that held
 * code it translated marked as code until each translation on it is invalidated, and every guest
 * write to such a page takes its self-modifying-code path (QEMU 7.2 locks the page and walks its
 * translations, per store). A guest rewrites many such pages right after the switch to the image:
 * the initramfs's programs ran from pages that are freed then and handed out again at once (module
 * loading, process creation, the page cache), and clearing or filling each one byte by byte took
 * the boot's CPU for 10-43 s (a `soft lockup` or `rcu_preempt self-detected stall` in
 * clear_page_erms; perf on the host then: a fifth of QEMU's samples in page_collection_lock, most
 * of the rest in QEMU code beside it, almost none in translation). A smaller cache is flushed
 * whole now and then, which drops those translations. Without it, 7 of 9 boots of the default ISO
 * stalled (ready at 74-81 s, against 36-38 s for the other two); with it (64, 128 or 256 MiB),
 * none of the 25 boots since did, and the default ISO was ready in 31-35 s (128 MiB: 31-32 s).
 * KVM and hardware have no such path.
 */
const TCG_ACCEL = 'tcg,thread=multi,tb-size=128';

/** QEMU's arguments for a boot (for a test that starts QEMU its own way, e.g. in a namespace). */
export function qemuArgs(opts: BootOptions): string[] {
  return [
    '-machine',
    'q35',
    '-accel',
    TCG_ACCEL,
    '-cpu',
    'max',
    '-smp',
    '2',
    '-m',
    String(opts.memoryMiB ?? 1536),
    ...(opts.nic ?? ['-nic', 'none']),
    '-display',
    'none',
    '-vga',
    'std',
    '-monitor',
    'none',
    ...(opts.serialOnStdio
      ? ['-chardev', `stdio,id=serial0,signal=off,logfile=${opts.serialLog}`, '-serial', 'chardev:serial0']
      : ['-serial', `file:${opts.serialLog}`]),
    ...(opts.allowReboot ? [] : ['-no-reboot']),
    ...(opts.uefi ? ovmfArgs(`${opts.serialLog}.ovmf-vars.fd`) : []),
    ...opts.media,
    ...(opts.extra ?? []),
  ];
}

function startQemu(opts: BootOptions) {
  // a serial log of an earlier run must not be read as this one's (QEMU truncates it only once
  // it has started)
  rmSync(opts.serialLog, { force: true });
  return execa('qemu-system-x86_64', qemuArgs(opts), { reject: false, stdin: 'ignore', all: true });
}

/**
 * Runs the machine until it stops by itself (with -no-reboot, a guest reboot ends QEMU): for a
 * guest that installs something and reboots. Throws with the serial log's tail at the deadline.
 */
export async function runUntilExit(opts: BootOptions): Promise<{ seconds: number; log: string }> {
  const deadline = (opts.deadlineSeconds ?? 300) * 1000;
  const t0 = performance.now();
  const qemu = startQemu({ ...opts, allowReboot: false });
  const timer = setTimeout(() => qemu.kill('SIGKILL'), deadline);
  try {
    const r = await qemu;
    const log = existsSync(opts.serialLog) ? readFileSync(opts.serialLog, 'utf8') : '';
    if (performance.now() - t0 >= deadline)
      throw new Error(
        `QEMU still running after ${deadline / 1000} s\n--- last serial output ---\n${tail(log)}`,
      );
    if (r.exitCode !== 0)
      throw new Error(`QEMU failed (${r.exitCode}): ${r.all}\n--- serial ---\n${tail(log)}`);
    return { seconds: Math.round((performance.now() - t0) / 100) / 10, log };
  } finally {
    clearTimeout(timer);
  }
}

export async function bootToReady(opts: BootOptions): Promise<BootResult> {
  const deadline = (opts.deadlineSeconds ?? 300) * 1000;
  const t0 = performance.now();
  const seconds = () => Math.round((performance.now() - t0) / 100) / 10;
  const marks: Record<string, number> = {};
  const qemu = startQemu(opts);
  try {
    for (;;) {
      const log = existsSync(opts.serialLog) ? readFileSync(opts.serialLog, 'utf8') : '';
      const readyLines = readyLinesOf(log);
      for (const [name, re] of Object.entries(opts.marks ?? {}))
        if (marks[name] === undefined && re.test(visibleText(log))) marks[name] = seconds();
      if (readyLines.length > 0 && (!opts.alsoWaitFor || opts.alsoWaitFor.test(visibleText(log)))) {
        // give a duplicate announcement a moment to show up, so the test can see it
        await new Promise((r) => setTimeout(r, 2000));
        const final = readFileSync(opts.serialLog, 'utf8');
        return {
          seconds: seconds(),
          readyLines: readyLinesOf(final),
          log: final,
          marks,
        };
      }
      if (qemu.exitCode !== null && qemu.exitCode !== undefined) {
        const r = await qemu;
        throw new Error(
          `QEMU exited (${r.exitCode}) before the ready line: ${r.all}\n--- serial ---\n${tail(log)}`,
        );
      }
      if (performance.now() - t0 > deadline) {
        throw new Error(
          `no ready line within ${deadline / 1000} s\n--- last serial output ---\n${tail(log)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    qemu.kill('SIGKILL');
    await qemu.catch(() => undefined);
  }
}

function tail(s: string, n = 40): string {
  return s.split('\n').slice(-n).join('\n');
}
