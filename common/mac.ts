// MAC addresses in the notations nodes, PXE ROMs and admins use, normalised to one form:
// lower case, colon-separated (52:54:00:12:34:56).

import { dataError } from './errors.ts';

const HEX12 = /^[0-9a-f]{12}$/;

/**
 * The canonical form of `text`, or undefined when it is not a MAC. Accepts 52:54:00:12:34:56,
 * 52-54-00-12-34-56, 525400123456, 5254.0012.3456 and pxelinux's / BOOTIF's 01-52-54-00-12-34-56
 * (hardware type 1, Ethernet), in any case.
 */
export function parseMac(text: string): string | undefined {
  let t = text.trim().toLowerCase();
  // pxelinux.cfg/01-<mac> and BOOTIF=01-<mac>: ARP hardware type 1 before six octets
  if (/^01[-:](?:[0-9a-f]{2}[-:]){5}[0-9a-f]{2}$/.test(t)) t = t.slice(3);
  let hex: string;
  if (/^(?:[0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(t) || /^(?:[0-9a-f]{2}-){5}[0-9a-f]{2}$/.test(t))
    hex = t.replace(/[-:]/g, '');
  else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(t)) hex = t.replace(/\./g, '');
  else hex = t;
  if (!HEX12.test(hex)) return undefined;
  return hex.match(/../g)?.join(':');
}

/** parseMac, or a data error that names the value and where it came from. */
export function normalizeMac(text: string, where: string): string {
  const mac = parseMac(text);
  if (mac === undefined)
    throw dataError(
      `not a MAC address: ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`,
      where,
      'write it as 52:54:00:12:34:56 (also accepted: 52-54-00-12-34-56, 525400123456, 5254.0012.3456, 01-52-54-00-12-34-56)',
    );
  return mac;
}

/** pxelinux's per-MAC config name: pxelinux.cfg/01-52-54-00-12-34-56. */
export function pxelinuxMacName(mac: string): string {
  return `01-${mac.replace(/:/g, '-')}`;
}
