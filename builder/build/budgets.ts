// Size budgets: `budgets: { iso: 150MB }` in a profile fails the build when an artifact is
// bigger, with the measured figure. Units are decimal (MB = 10^6 bytes) or binary (MiB = 2^20).

import { HvError } from '../../common/index.ts';
import type { BuildProfile } from '../kickstart/profile.ts';

export const BUDGET_KEYS = ['iso', 'squashfs', 'initrd'] as const;
export type BudgetKey = (typeof BUDGET_KEYS)[number];

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
};

/** Pattern for the profile schema: a number of bytes, or a number with a unit. */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([KMG]i?B|B)?$';

export function parseSize(text: string | number): number {
  if (typeof text === 'number') return text;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMG]i?B|B)?$/i.exec(text.trim());
  const factor = UNITS[(m?.[2] ?? '').toUpperCase()];
  if (!m || factor === undefined)
    throw new HvError(`not a size: "${text}"`, { hint: 'write e.g. 150MB or 140MiB' });
  return Math.round(Number(m[1]) * factor);
}

export function formatSize(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB (${(bytes / 2 ** 20).toFixed(1)} MiB, ${bytes} bytes)`;
}

/** Throws (exit 1) naming every artifact over its budget. */
export function checkBudgets(
  profile: Pick<BuildProfile, 'budgets'>,
  profileFile: string,
  measured: Record<BudgetKey, number>,
): void {
  const over: string[] = [];
  for (const key of BUDGET_KEYS) {
    const budget = profile.budgets?.[key];
    if (budget === undefined) continue;
    const limit = parseSize(budget);
    if (measured[key] > limit)
      over.push(`${key} is ${formatSize(measured[key])}, over its budget of ${budget}`);
  }
  if (over.length > 0)
    throw new HvError(`size budget exceeded: ${over.join('; ')}`, {
      where: profileFile,
      hint: 'minimize more (blacklist rules), drop packages, or raise "budgets" in the profile',
    });
}
