// The two programs: the installer (`hvnode-setup --install`) and the setup screens
// (`hvnode-setup`), each a loop of "draw the page, take a key, act".

import { readlinkSync } from 'node:fs';
import type { NodeConfig, SystemFacts } from '../../node-runtime/index.ts';
import { fetchEngineCaFingerprint, runTool } from '../../node-runtime/index.ts';
import { errorLines, field, type Page } from '../model/form.ts';
import { Installer } from '../model/installer.ts';
import { configOf, type SetupScreen, setupScreens, statusScreen } from '../model/setup.ts';
import {
  applyConfig,
  installFacts,
  installPlan,
  loadSaved,
  quietKernelConsole,
  registerEngine,
  runInstall,
  uploadCurrentConfig,
} from '../system.ts';
import { createUi, type Keys, pageKey, renderPage, type Ui } from './app.ts';

export interface RunOptions {
  facts: SystemFacts;
  env: NodeJS.ProcessEnv;
  dryRun: boolean;
  version: string;
  /** Lines printed on standard output after the screen closes (dry-run results). */
  transcript: string[];
}

/** loadkeys changes the keymap of the Linux console: only when the installer runs on one. */
function onVirtualConsole(): boolean {
  try {
    return /^\/dev\/tty\d+$/.test(readlinkSync('/proc/self/fd/0'));
  } catch {
    return false;
  }
}

const HELP = 'Tab/arrows move  Enter select  Space mark  PgUp/PgDn scroll  Esc back  ^C quit';

function draw(ui: Ui, title: string, page: Page, focus: number, active = true): void {
  ui.title.setContent(` ${title}`);
  ui.body.setLabel(` ${page.title} `);
  const width = (ui.body.width as number) - 4;
  ui.body.setContent(renderPage(page, focus, width, active).join('\n'));
  ui.status.setContent(` ${HELP}`);
  ui.screen.render();
}

function onKeys(
  ui: Ui,
  handler: (ch: string | undefined, key: Keys) => void | Promise<void>,
  done: () => void,
): void {
  // keys are handled one after the other, in order (a paste or a fast typist sends many at once)
  let chain: Promise<void> = Promise.resolve();
  ui.screen.on('keypress', (ch: string | undefined, key: Keys) => {
    if (key.full === 'C-c') return done();
    // the whole screen again, e.g. after a message that was not ours landed on a serial line
    if (key.full === 'C-l') {
      ui.screen.realloc();
      ui.screen.render();
      return;
    }
    if (key.name === 'return') return;
    // a long page (the plan, the progress log) scrolls
    if (key.name === 'pageup' || key.name === 'pagedown') {
      ui.body.scroll((key.name === 'pageup' ? -1 : 1) * Math.max(1, (ui.body.height as number) - 3));
      ui.screen.render();
      return;
    }
    chain = chain
      .then(() => handler(ch, key))
      .catch((err: unknown) => {
        ui.status.setContent(
          ` {red-fg}internal error: ${String(err instanceof Error ? err.message : err)}{/red-fg}`,
        );
        ui.screen.render();
      });
  });
}

/** The installer; resolves with the exit code when the user leaves it. */
export async function runInstaller(o: RunOptions): Promise<number> {
  quietKernelConsole(o.env, o.dryRun);
  const facts = await installFacts(o.facts, o.env);
  const inst = new Installer(facts);
  const ui = createUi(false);
  const title = `hvnode ${facts.imageVersion} installer${o.dryRun ? ' (dry run)' : ''}`;
  let step = 0;
  const state = { focus: 0 };
  let page: Page = inst.welcome;
  let config: NodeConfig | undefined;
  const progress: Page = { id: 'progress', title: 'Installation progress', fields: [], output: [] };
  return new Promise<number>((resolve) => {
    let exitCode = 0;
    const quit = (code = exitCode) => {
      ui.screen.destroy();
      resolve(code);
    };
    const show = (p: Page) => {
      page = p;
      state.focus = 0;
      // a new page starts at its top (Progress scrolls to its last line)
      ui.body.setScroll(0);
      draw(ui, title, page, state.focus);
    };
    const forward = async () => {
      const pages = inst.pages();
      if (!inst.check(page)) return draw(ui, title, page, state.focus);
      const next = pages[pages.indexOf(page) + 1];
      if (!next) return;
      step = pages.indexOf(next);
      if (next === inst.confirm) {
        inst.confirm.output = ['working out the plan...'];
        show(next);
        try {
          config = inst.config();
          const plan = await installPlan(config, o.env);
          inst.confirm.output = plan.replace(/\n$/, '').split('\n');
        } catch (err) {
          // the refusal goes on the screen where the choice was made
          const where = inst.placeRefusal(err);
          step = pages.indexOf(where);
          return show(where);
        }
      }
      show(next);
    };
    const install = async () => {
      if (!config) return;
      progress.output = [];
      show(progress);
      const log = (l: string) => {
        progress.output?.push(l);
        ui.body.setScrollPerc(100);
        draw(ui, title, progress, 0);
      };
      if (o.dryRun) o.transcript.push(`NodeConfig: ${JSON.stringify(config)}`);
      try {
        exitCode = await runInstall(config, o.env, o.dryRun, (l) => {
          log(l);
          if (o.dryRun) o.transcript.push(l);
        });
      } catch (err) {
        exitCode = 1;
        for (const l of errorLines(err)) log(l);
      }
      const ok = exitCode === 0;
      show({
        id: ok ? 'finished' : 'failed',
        title: ok ? 'Finished' : 'Failed',
        intro: ok
          ? [
              o.dryRun
                ? 'Dry run finished: nothing was written.'
                : 'hvnode installation finished successfully.',
            ]
          : ['The installation failed.', ...(progress.output ?? []).slice(-6)],
        fields: ok
          ? [{ id: 'reboot', label: 'Reboot', kind: 'button', value: '' }]
          : [
              { id: 'log', label: 'View log', kind: 'button', value: '' },
              { id: 'quit', label: 'Quit', kind: 'button', value: '' },
            ],
      });
    };
    onKeys(
      ui,
      async (ch, key) => {
        if (page === progress) return;
        const act = pageKey(page, state, ch, key);
        if (act === 'escape') {
          const pages = inst.pages();
          const i = pages.indexOf(page);
          if (i > 0) {
            step = i - 1;
            return show(pages[step] as Page);
          }
        } else if (act === 'select' && (page === inst.welcome || page === inst.keyboard)) {
          if (page === inst.keyboard && !o.dryRun && onVirtualConsole())
            await runTool('loadkeys', [field(page, 'layout').value]).catch(() => undefined);
          return forward();
        } else if (act === 'next' || act === 'select') {
          if (act === 'select' && page !== inst.bootDevice) return draw(ui, title, page, state.focus);
          if (act === 'select' && field(page, 'disk').value === 'other') {
            state.focus = 1;
            return draw(ui, title, page, state.focus);
          }
          return forward();
        } else if (act === 'back') {
          step = Math.max(0, step - 1);
          return show(inst.pages()[step] as Page);
        } else if (act === 'install') return install();
        else if (act === 'reboot') {
          // with the HVNODE_* overrides the "machine" is a test's loop disk: never the host's reboot
          const faked = Object.keys(o.env).some((k) => k.startsWith('HVNODE_'));
          if (o.dryRun || faked)
            o.transcript.push(`would reboot${faked ? ' (HVNODE_* test overrides set)' : ''}`);
          else await runTool('systemctl', ['reboot']).catch(() => undefined);
          return quit(0);
        } else if (act === 'log') {
          return show({
            id: 'log',
            title: 'Log',
            fields: [{ id: 'quit', label: 'Quit', kind: 'button', value: '' }],
            output: progress.output,
          });
        } else if (act === 'quit') return quit();
        draw(ui, title, page, state.focus);
      },
      () => quit(130),
    );
    show(page);
  });
}

/** The setup screens; resolves with the exit code when the user leaves. */
export async function runSetup(o: RunOptions): Promise<number> {
  const nics = await o.facts.nics();
  let saved = loadSaved(o.env, o.facts.hostname());
  const screens = setupScreens(nics);
  for (const s of screens) s.load(saved);
  const engineState = () =>
    saved.engine
      ? `${saved.engine.server}:${saved.engine.port ?? 443} (registration not built yet)`
      : 'not configured';
  const makeStatus = async () =>
    statusScreen(
      {
        hostname: o.facts.hostname(),
        nics: await o.facts.nics(),
        vms: await o.facts.runningVms(),
        sshKeys: o.facts.sshHostKeys(),
      },
      engineState(),
    );
  const ui = createUi(true);
  const title = `hvnode ${o.version} setup: ${o.facts.hostname()}${o.dryRun ? ' (dry run)' : ''}`;
  const entries: (Page | SetupScreen)[] = [await makeStatus(), ...screens];
  const pageOf = (e: Page | SetupScreen): Page => ('page' in e ? e.page : e);
  let current = 0;
  let inMenu = true;
  const state = { focus: 0 };
  const redraw = () => {
    ui.menu?.setContent(
      entries
        .map((e, i) => {
          const t = pageOf(e).title.padEnd(14);
          return i === current ? (inMenu ? `{inverse}${t}{/inverse}` : `{bold}>${t}{/bold}`) : ` ${t}`;
        })
        .join('\n'),
    );
    draw(ui, title, pageOf(entries[current] as Page), state.focus, !inMenu);
  };
  return new Promise<number>((resolve) => {
    const quit = (code: number) => {
      ui.screen.destroy();
      resolve(code);
    };
    const act = async (screen: Page | SetupScreen, action: string) => {
      const page = pageOf(screen);
      const setup = 'page' in screen ? screen : undefined;
      page.output = [];
      switch (action) {
        case 'apply': {
          if (!setup) return;
          const next = configOf(setup, saved);
          if (!next) {
            page.output = ['not applied: correct the fields marked !'];
            return;
          }
          page.output = ['applying...'];
          redraw();
          try {
            page.output = await applyConfig(next, o.env, o.dryRun);
            if (o.dryRun) o.transcript.push(`${page.title}:`, ...page.output);
            else saved = next;
            if (page.id === 'engine') {
              page.output.push('registering...');
              redraw();
              page.output.splice(-1, 1, ...(await registerEngine(next, o.env, o.dryRun)));
              if (o.dryRun) o.transcript.push(...page.output.slice(-1));
            }
          } catch (err) {
            page.output = ['Apply failed:', ...errorLines(err)];
          }
          return;
        }
        case 'reset':
          setup?.load(saved);
          page.output = ['back to the saved values'];
          return;
        case 'doping': {
          const host = field(page, 'ping').value.trim();
          if (!host) {
            field(page, 'ping').error = 'type a host to ping';
            return;
          }
          page.output = [`ping ${host}...`];
          redraw();
          const r = await runTool('ping', ['-c', '3', '-W', '2', host]).then(
            (out) => out.trim().split('\n').slice(-2),
            (e: Error) => [`ping ${host} failed: ${e.message.split('\n')[0]}`],
          );
          page.output = r;
          return;
        }
        case 'fetch': {
          if (!setup?.check()) return;
          const server = field(page, 'server').value.trim();
          if (!server) {
            field(page, 'server').error = 'required to fetch the CA';
            return;
          }
          page.output = [`connecting to ${server}...`];
          redraw();
          try {
            // the CA as the engine's host-register service gives it (get-pki-trust), the one
            // registration then pins: not the TLS chain, which need not carry the CA
            const port = Number(field(page, 'port').value || 443);
            const fp = await fetchEngineCaFingerprint({ server, port });
            page.output = [
              `CA fingerprint of ${server}: ${fp}`,
              'Accept it if it is the one your engine shows.',
            ];
            (page as Page & { pending?: string }).pending = fp;
          } catch (err) {
            page.output = [`cannot fetch the CA: ${(err as Error).message}`];
          }
          return;
        }
        case 'accept': {
          const fp = (page as Page & { pending?: string }).pending;
          if (!fp) page.output = ['fetch the CA fingerprint first'];
          else {
            field(page, 'fingerprint').value = fp;
            page.output = ['accepted: Apply stores it'];
          }
          return;
        }
        case 'reject':
          field(page, 'fingerprint').value = '';
          delete (page as Page & { pending?: string }).pending;
          page.output = ['rejected: no fingerprint'];
          return;
        case 'upload': {
          const url = field(page, 'url').value.trim();
          if (!url) {
            page.output = ['type the config server URL first'];
            return;
          }
          page.output = [`uploading to ${url}...`];
          redraw();
          page.output = await uploadCurrentConfig(url, o.env, o.dryRun);
          if (o.dryRun) o.transcript.push(`${page.title}:`, ...page.output);
          return;
        }
        case 'lock':
        case 'restart':
        case 'poweroff': {
          const cmd = {
            lock: ['vlock', '-a'],
            restart: ['systemctl', 'reboot'],
            poweroff: ['systemctl', 'poweroff'],
          }[action];
          if (o.dryRun) {
            page.output = [`dry run: would run ${cmd?.join(' ')}`];
            o.transcript.push(page.output[0] as string);
          } else if (cmd)
            await runTool(cmd[0] as string, cmd.slice(1)).catch((e: Error) => (page.output = [e.message]));
          return;
        }
      }
    };
    onKeys(
      ui,
      async (ch, key) => {
        if (inMenu) {
          if (key.name === 'up') current = (current + entries.length - 1) % entries.length;
          else if (key.name === 'down') current = (current + 1) % entries.length;
          else if (key.name === 'enter' || key.name === 'tab' || key.name === 'right') {
            inMenu = false;
            state.focus = 0;
          } else if (key.name === 'escape' || ch === 'q') return quit(0);
          if (current === 0 && key.name !== 'enter') entries[0] = await makeStatus();
          return redraw();
        }
        const entry = entries[current] as Page | SetupScreen;
        const a = pageKey(pageOf(entry), state, ch, key);
        if (a === 'escape') inMenu = true;
        else if (a && a !== 'select') await act(entry, a);
        redraw();
      },
      () => quit(130),
    );
    redraw();
  });
}
