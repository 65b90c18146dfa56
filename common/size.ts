// Sizes as people write them (profile budgets, --size): the one parser. SI units are decimal
// (kB/KB = 10^3, MB = 10^6, GB = 10^9, TB = 10^12 bytes), IEC units binary (KiB = 2^10, MiB =
// 2^20, GiB = 2^30, TiB = 2^40), as the README says. A bare K, M, G or T (4G) is refused: it
// means GB to some tools and GiB to others.

import { dataError } from './errors.ts';

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/** Pattern for JSON schemas: a number of bytes, or a number with a unit parseSize takes. */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([KkMmGgTt][Ii]?[Bb]|[Bb])?$';

export interface SizeOptions {
  /** What the size is, for messages: `--size`, `budgets.iso`. */
  what?: string;
  where?: string;
  /** A number without a unit: bytes (default), or refused (say which unit). */
  bare?: 'bytes' | 'refuse';
  /** Smallest size taken, in bytes. */
  min?: number;
}

/** Bytes of `150MB`, `140MiB`, `1.5 GiB`, `1234` (a number is bytes); an HvError (exit 65) otherwise. */
export function parseSize(text: string | number, o: SizeOptions = {}): number {
  const what = o.what ? `${o.what} ` : '';
  const shown = JSON.stringify(String(text));
  let bytes: number;
  if (typeof text === 'number') bytes = text;
  else {
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$/.exec(text.trim());
    const unit = (m?.[2] ?? '').toUpperCase();
    if (m && /^[KMGT]$/.test(unit))
      throw dataError(
        `${what}${shown} is ambiguous: ${unit} could mean ${unit}B (10^${'KMGT'.indexOf(unit) * 3 + 3}) or ${unit}iB (2^${'KMGT'.indexOf(unit) * 10 + 10}) bytes`,
        o.where,
        `write ${m[1]}${unit}B or ${m[1]}${unit}iB`,
      );
    if (m && unit === '' && o.bare === 'refuse')
      throw dataError(`${what}${shown} has no unit`, o.where, `write e.g. ${m[1]}MiB or ${m[1]}GB`);
    const factor = unit === '' ? 1 : UNITS[unit];
    if (!m || factor === undefined)
      throw dataError(
        `${what}${shown} is not a size`,
        o.where,
        'write e.g. 150MB or 140MiB (MB, GB: powers of 10; MiB, GiB: powers of 2)',
      );
    bytes = Math.round(Number(m[1]) * factor);
  }
  if (!Number.isFinite(bytes) || bytes < (o.min ?? 0))
    throw dataError(`${what}${shown} is too small`, o.where, `give at least ${formatSize(o.min ?? 0)}`);
  return bytes;
}

/** `150.0 MB (143.1 MiB, 150000000 bytes)`: both units, so that no reader converts. */
export function formatSize(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB (${(bytes / 2 ** 20).toFixed(1)} MiB, ${bytes} bytes)`;
}
