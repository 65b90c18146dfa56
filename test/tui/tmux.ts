// Drives the real hvnode-setup in a detached 80x24 tmux session: keys in (send-keys), screen out
// (capture-pane), with deadlines instead of sleeps. tmux shows line drawing as letters (lqqk).
// The program may also be QEMU with the guest's serial console on the pane (run).

import type { ExecutionContext } from 'ava';
import { execa } from 'execa';

export class Tmux {
  readonly name = `hvnode-tui-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  constructor(readonly t: ExecutionContext) {}

  async start(command: string, env: Record<string, string>, cwd?: string): Promise<void> {
    const vars = Object.entries(env)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(' ');
    // the pane stays after the program ends, so its last screen can be read
    await execa('tmux', [
      'new-session',
      '-d',
      '-s',
      this.name,
      '-x',
      '80',
      '-y',
      '24',
      ...(cwd ? ['-c', cwd] : []),
      `env TERM=xterm-256color ${vars} ${command}; echo "exit=$?"; sleep 600`,
    ]);
    this.t.teardown(() =>
      execa('tmux', ['kill-session', '-t', this.name], { reject: false }).then(() => undefined),
    );
  }

  /** Starts a program given as its arguments (each quoted for the shell), e.g. QEMU. */
  async run(argv: string[], env: Record<string, string> = {}): Promise<void> {
    await this.start(argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), env);
  }

  /** The pane as text, lines the terminal wrapped joined again; `all`: with the scrollback. */
  async screen(all = false): Promise<string> {
    const args = ['capture-pane', '-p', '-J', '-t', this.name, ...(all ? ['-S', '-'] : [])];
    return (await execa('tmux', args)).stdout;
  }

  /**
   * Waits until the screen shows `what`; fails with the last screen after `seconds`. With
   * `settleMs`, also until the screen has not changed for that long: a program drawing over a
   * serial line shows a new page's first lines while the old page's are still below them.
   */
  async waitFor(what: string | RegExp, seconds = 20, settleMs = 0): Promise<string> {
    const deadline = Date.now() + seconds * 1000;
    const shows = (screen: string) => (typeof what === 'string' ? screen.includes(what) : what.test(screen));
    let last = '';
    let since = 0;
    while (Date.now() < deadline) {
      const screen = await this.screen();
      if (screen !== last) since = Date.now();
      last = screen;
      if (shows(screen) && Date.now() - since >= settleMs) return screen;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `the screen did not show ${String(what)}${settleMs ? ` and stay still for ${settleMs} ms` : ''} within ${seconds} s; it shows:\n${last}`,
    );
  }

  /** Keys as tmux names them (Tab, Enter, Down, BTab, Space) or literal text with `text:`. */
  async keys(...keys: string[]): Promise<void> {
    for (const k of keys) {
      if (k.startsWith('text:')) await execa('tmux', ['send-keys', '-t', this.name, '-l', k.slice(5)]);
      else await execa('tmux', ['send-keys', '-t', this.name, k]);
      // one key at a time, as a person types: the program redraws between keys
      await new Promise((r) => setTimeout(r, 40));
    }
  }
}

/** Replaces the text of the focused field (`old`: what it holds). */
export async function retype(tmux: Tmux, old: string, value: string): Promise<void> {
  await tmux.keys(...Array<string>(old.length).fill('BSpace'), `text:${value}`);
}
