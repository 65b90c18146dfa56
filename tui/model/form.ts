// The view-model's building blocks: a screen is a list of fields (text, password, toggle, choice,
// list, multi-select, button, info), each with its value and its inline error. No I/O, no
// terminal: the blessed UI (tui/ui) draws a Page and feeds it keys; tests drive Pages directly.

import { HvError } from '../../common/index.ts';
import { type ValuePatternName, valuePattern } from '../../node-runtime/index.ts';

export type FieldKind = 'text' | 'password' | 'toggle' | 'choice' | 'list' | 'multi' | 'button' | 'info';

export interface Option {
  value: string;
  label: string;
  /** Why it cannot be chosen (shown next to it). */
  refused?: string;
}

export interface Field {
  id: string;
  label: string;
  kind: FieldKind;
  /** text/password: the text; toggle: 'yes'|'no'; choice/list: the chosen option's value. */
  value: string;
  /** multi: the chosen values. */
  values?: string[];
  options?: Option[];
  /** list/multi: the highlighted row. */
  cursor?: number;
  /** list: the column titles. */
  header?: string;
  error?: string;
  /** Grey text after the field (units, examples). */
  note?: string;
  /** Shown only when this returns true (e.g. the static address fields). */
  visible?: () => boolean;
}

export interface Page {
  id: string;
  title: string;
  intro?: string[];
  fields: Field[];
  /** Lines below the fields: results, the plan, what Apply did. */
  output?: string[];
}

export const text = (id: string, label: string, value = '', note?: string): Field => ({
  id,
  label,
  kind: 'text',
  value,
  ...(note ? { note } : {}),
});
export const password = (id: string, label: string): Field => ({ id, label, kind: 'password', value: '' });
export const toggle = (id: string, label: string, on: boolean): Field => ({
  id,
  label,
  kind: 'toggle',
  value: on ? 'yes' : 'no',
});
export const choice = (id: string, label: string, options: Option[], value?: string): Field => ({
  id,
  label,
  kind: 'choice',
  options,
  value: value ?? options[0]?.value ?? '',
});
export const button = (id: string, label: string): Field => ({ id, label, kind: 'button', value: '' });
export const info = (id: string, label: string, value: string): Field => ({ id, label, kind: 'info', value });

export function field(page: Page, id: string): Field {
  const f = page.fields.find((x) => x.id === id);
  if (!f) throw new Error(`${page.id} has no field ${id}`);
  return f;
}

export const val = (page: Page, id: string): string => field(page, id).value.trim();

export function set(page: Page, id: string, value: string): void {
  field(page, id).value = value;
}

export function clearErrors(page: Page): void {
  for (const f of page.fields) delete f.error;
}

export function errorsOf(page: Page): Record<string, string> {
  return Object.fromEntries(page.fields.flatMap((f) => (f.error ? [[f.id, f.error]] : [])));
}

export function isVisible(f: Field): boolean {
  return f.visible ? f.visible() : true;
}

// ---------------------------------------------------------------------------------------------
// Value checks: the patterns NodeConfig's schema uses, with a message for the screen.

const MESSAGES: Partial<Record<ValuePatternName, string>> = {
  hostname: 'not a host name (letters, digits, hyphens, dots)',
  host: 'not a host name or IP address',
  ipv4: 'not an IPv4 address (e.g. 192.0.2.10)',
  ipAddress: 'not an IP address',
  netmask: 'not a netmask (e.g. 255.255.255.0)',
  nfsTarget: 'not an NFS location (host:/path)',
  sshTarget: 'not an SSH location (user@host)',
  iscsiName: 'not an iSCSI name (iqn.YYYY-MM.domain[:id])',
  url: 'not an http(s) URL',
  devicePath: 'not a device path (/dev/...)',
};

/** The error for `value` (undefined when empty and optional, or valid). */
export function checkValue(value: string, pattern: ValuePatternName, required = false): string | undefined {
  if (value === '') return required ? 'required' : undefined;
  return valuePattern(pattern).test(value) ? undefined : (MESSAGES[pattern] ?? `not a valid ${pattern}`);
}

/** A port: 1-65535, empty allowed (the service's default). */
export function checkPort(value: string): string | undefined {
  if (value === '') return undefined;
  return /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 65535
    ? undefined
    : 'a port is 1-65535';
}

/** Sets each field's error from `checks` (id → message or undefined); true when none failed. */
export function applyChecks(page: Page, checks: Record<string, string | undefined>): boolean {
  let ok = true;
  for (const [id, message] of Object.entries(checks)) {
    if (message === undefined) continue;
    const f = field(page, id);
    f.error ??= message;
    ok = false;
  }
  return ok;
}

/** An HvError as the lines a screen shows: the message, each diagnostic, the hint. */
export function errorLines(err: unknown): string[] {
  if (!(err instanceof HvError)) return [err instanceof Error ? err.message : String(err)];
  const lines = [err.where ? `${err.where}: ${err.message}` : err.message];
  for (const d of err.diagnostics) lines.push(`  ${d.message}${d.hint ? ` (${d.hint})` : ''}`);
  if (err.hint) lines.push(`hint: ${err.hint}`);
  return lines;
}

/** Password rules of the console and admin passwords (both fields given). */
export function checkPassword(
  pw: string,
  confirm: string,
  user = 'admin',
): Record<string, string | undefined> {
  if (pw !== confirm) return { confirm: 'the passwords do not match' };
  if (pw === '') return {};
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(pw)).length;
  if (pw.length < 8) return { password: 'too short: at least 8 characters' };
  if (pw.toLowerCase().includes(user)) return { password: `weak: it contains the user name "${user}"` };
  if (classes < 2 || new Set(pw).size < 4)
    return { password: 'weak: mix letters with digits or other characters' };
  return {};
}
