// The blessed front end: draws a view-model Page in a bordered box (setup: a menu of screens on
// the left) and turns keys into changes of the Page. Keyboard only; fits 80x24; plain line
// drawing and inverse video only, so it reads on xterm, the Linux console and a serial line.
//
// Keys: Tab/Down next field, Shift-Tab/Up previous, Enter activate (button, list row), Space or
// Left/Right change a toggle/choice, Space marks a row of a multi-select, PgUp/PgDn scroll a long
// page, Esc back (installer) or to the menu (setup), Ctrl-C quit.

import type { Widgets } from 'blessed';
import Tput from 'blessed/lib/tput.js';
import Box from 'blessed/lib/widgets/box.js';
import Screen from 'blessed/lib/widgets/screen.js';
import { type Field, isVisible, type Page } from '../model/form.ts';

export interface Keys {
  name?: string;
  full?: string;
  ch?: string;
}

/** Escapes blessed's tag braces in user text. */
export const esc = (s: string) => s.replace(/[{}]/g, (c) => (c === '{' ? '{open}' : '{close}'));

export function focusable(page: Page): Field[] {
  return page.fields.filter((f) => f.kind !== 'info' && isVisible(f));
}

const LIST_ROWS = 7;

/** The page as tagged lines, the focused field inverse. */
export function renderPage(page: Page, focus: number, width: number, active: boolean): string[] {
  const lines: string[] = [];
  for (const l of page.intro ?? []) lines.push(esc(l));
  if (page.intro?.length) lines.push('');
  const fields = focusable(page);
  const labelWidth = Math.min(
    24,
    Math.max(...page.fields.map((f) => (f.kind === 'button' ? 0 : f.label.length))) + 1,
  );
  const buttons: string[] = [];
  const flushButtons = () => {
    if (buttons.length > 0) lines.push(buttons.splice(0).join('  '));
  };
  for (const f of page.fields) {
    if (!isVisible(f)) continue;
    const on = active && fields[focus] === f;
    const hi = (s: string) => (on ? `{inverse}${s}{/inverse}` : s);
    if (f.kind === 'button') {
      buttons.push(hi(`< ${esc(f.label)} >`));
      continue;
    }
    flushButtons();
    const label = `${esc(f.label)}:`.padEnd(labelWidth + 1);
    switch (f.kind) {
      case 'info':
        lines.push(`${label} ${esc(f.value)}`);
        break;
      case 'text':
      case 'password': {
        const shown = f.kind === 'password' ? '*'.repeat(f.value.length) : f.value;
        const box = Math.max(10, Math.min(28, width - labelWidth - 4));
        const visible = shown.length > box - 1 ? shown.slice(shown.length - box + 1) : shown;
        lines.push(
          `${label} ${hi(`[${esc(visible.padEnd(box - 1, on ? ' ' : '_'))}]`)}${f.note && labelWidth + box + f.note.length + 4 <= width ? ` {gray-fg}${esc(f.note)}{/gray-fg}` : ''}`,
        );
        break;
      }
      case 'toggle':
        lines.push(`${label} ${hi(f.value === 'yes' ? '[x]' : '[ ]')}`);
        break;
      case 'choice': {
        const opts = (f.options ?? []).map((o) =>
          o.value === f.value ? `(*) ${esc(o.label)}` : `( ) ${esc(o.label)}`,
        );
        lines.push(`${label} ${hi(opts.join('  '))}`);
        break;
      }
      case 'list':
      case 'multi': {
        lines.push(`${esc(f.label)}:${f.header ? `     ${esc(f.header)}` : ''}`);
        const opts = f.options ?? [];
        const cursor = f.cursor ?? 0;
        const start = Math.max(0, Math.min(cursor - Math.floor(LIST_ROWS / 2), opts.length - LIST_ROWS));
        opts.slice(start, start + LIST_ROWS).forEach((o, i) => {
          const idx = start + i;
          const mark =
            f.kind === 'multi'
              ? (f.values ?? []).includes(o.value)
                ? '[x]'
                : '[ ]'
              : o.value === f.value
                ? '(*)'
                : '( )';
          // why a row cannot be chosen: after it, or on a line of its own when it does not fit
          const why = o.refused ? `{red-fg}(${esc(o.refused)}){/red-fg}` : '';
          const inline = o.refused && o.label.length + o.refused.length + 7 <= width;
          const row = `${mark} ${esc(o.label)}${inline ? ` ${why}` : ''}`;
          lines.push(` ${on && idx === cursor ? `{inverse}${row}{/inverse}` : row}`);
          if (o.refused && !inline) lines.push(`     ${why}`);
        });
        if (opts.length === 0) lines.push('  (none)');
        break;
      }
    }
    if (f.error) lines.push(`{red-fg}  ! ${esc(f.error)}{/red-fg}`);
  }
  flushButtons();
  if (page.output?.length) {
    lines.push('');
    for (const l of page.output) lines.push(esc(l));
  }
  return lines;
}

/**
 * One key on a page. Returns the button pressed (its id), 'select' when Enter chose a list
 * row, 'escape', or undefined.
 */
export function pageKey(
  page: Page,
  state: { focus: number },
  ch: string | undefined,
  key: Keys,
): string | undefined {
  const fields = focusable(page);
  if (fields.length === 0)
    return key.name === 'escape' ? 'escape' : key.name === 'enter' ? 'enter' : undefined;
  state.focus = Math.min(state.focus, fields.length - 1);
  const f = fields[state.focus] as Field;
  const move = (d: number) => {
    state.focus = (state.focus + d + fields.length) % fields.length;
  };
  const isList = f.kind === 'list' || f.kind === 'multi';
  const opts = f.options ?? [];
  const name = key.full === 'S-tab' ? 'backtab' : key.name;
  switch (name) {
    case 'tab':
      move(1);
      return undefined;
    case 'backtab':
      move(-1);
      return undefined;
    case 'down':
      if (isList && (f.cursor ?? 0) < opts.length - 1) f.cursor = (f.cursor ?? 0) + 1;
      else move(1);
      return undefined;
    case 'up':
      if (isList && (f.cursor ?? 0) > 0) f.cursor = (f.cursor ?? 0) - 1;
      else move(-1);
      return undefined;
    case 'escape':
      return 'escape';
    case 'enter':
      if (f.kind === 'button') return f.id;
      if (f.kind === 'list') {
        f.value = opts[f.cursor ?? 0]?.value ?? f.value;
        delete f.error;
        return 'select';
      }
      if (f.kind === 'multi') {
        move(1);
        return undefined;
      }
      move(1);
      return undefined;
    case 'left':
    case 'right':
    case 'space':
      if (f.kind === 'toggle') {
        f.value = f.value === 'yes' ? 'no' : 'yes';
        return undefined;
      }
      if (f.kind === 'choice') {
        const i = opts.findIndex((o) => o.value === f.value);
        const next = opts[(i + (name === 'left' ? -1 : 1) + opts.length) % opts.length];
        if (next) f.value = next.value;
        return undefined;
      }
      if (f.kind === 'multi' && name === 'space') {
        const v = opts[f.cursor ?? 0]?.value;
        if (v === undefined) return undefined;
        const values = new Set(f.values ?? []);
        if (values.has(v)) values.delete(v);
        else values.add(v);
        f.values = opts.map((o) => o.value).filter((x) => values.has(x));
        delete f.error;
        return undefined;
      }
      if (f.kind === 'list' && name === 'space') {
        f.value = opts[f.cursor ?? 0]?.value ?? f.value;
        return undefined;
      }
      if (name === 'space' && (f.kind === 'text' || f.kind === 'password')) f.value += ' ';
      return undefined;
    case 'backspace':
      if (f.kind === 'text' || f.kind === 'password') f.value = f.value.slice(0, -1);
      return undefined;
    default:
      if (
        (f.kind === 'text' || f.kind === 'password') &&
        ch &&
        ch.length === 1 &&
        ch >= ' ' &&
        ch !== '\x7f'
      ) {
        f.value += ch;
        delete f.error;
      }
      return undefined;
  }
}

export interface Ui {
  screen: Widgets.Screen;
  menu: Widgets.BoxElement | undefined;
  body: Widgets.BoxElement;
  status: Widgets.BoxElement;
  title: Widgets.BoxElement;
}

/** The screen: a title line, the body (and a menu), a key help line. */
/**
 * A terminal type whose terminfo blessed can read. blessed 0.1.81 does not read ncurses 6's
 * extended-number entries (xterm-256color, tmux-256color, ...), and its fallback reads files of
 * its own package, which a bundle does not have; the screens need 8 colors at most, so the base
 * entry (xterm, tmux, screen) does as well.
 */
export function terminalType(term = process.env.TERM ?? ''): string {
  const base = term.replace(/-(256color|direct|truecolor|88color)$/, '');
  for (const name of [term, base, 'xterm', 'vt100']) {
    if (!name) continue;
    try {
      if (!new Tput({ terminal: name }).error) return name;
    } catch {
      // its fallback needs blessed's own files: not this one
    }
  }
  return 'vt100';
}

export function createUi(withMenu: boolean): Ui {
  const screen = Screen({
    terminal: terminalType(),
    smartCSR: true,
    fullUnicode: false,
    dockBorders: true,
    autoPadding: true,
    warnings: false,
  });
  const title = Box({
    parent: screen,
    top: 0,
    left: 0,
    height: 1,
    width: '100%',
    tags: true,
    style: { inverse: true },
  });
  const menu = withMenu
    ? Box({
        parent: screen,
        top: 1,
        left: 0,
        width: 18,
        bottom: 1,
        border: { type: 'line' },
        tags: true,
        label: ' Menu ',
      })
    : undefined;
  const body = Box({
    parent: screen,
    top: 1,
    left: withMenu ? 17 : 0,
    right: 0,
    bottom: 1,
    border: { type: 'line' },
    tags: true,
    scrollable: true,
  });
  const status = Box({ parent: screen, bottom: 0, left: 0, height: 1, width: '100%', tags: true });
  return { screen, menu, body, status, title };
}
