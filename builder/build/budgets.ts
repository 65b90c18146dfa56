// Size budgets: `budgets: { iso: 150MB }` in a profile fails the build when an artifact is
// bigger, with the measured figure. Sizes are read by common's parseSize (MB = 10^6 bytes, MiB = 2^20).

import { formatSize, HvError, parseSize } from '../../common/index.ts';
import type { BuildProfile } from '../kickstart/profile.ts';

/** The profile schema's pattern for a budget (common's). */
export { SIZE_PATTERN } from '../../common/index.ts';

export const BUDGET_KEYS = ['iso', 'squashfs', 'initrd'] as const;
export type BudgetKey = (typeof BUDGET_KEYS)[number];

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
    const limit = parseSize(budget, { what: `budgets.${key}`, where: profileFile });
    if (measured[key] > limit)
      over.push(`${key} is ${formatSize(measured[key])}, over its budget of ${budget}`);
  }
  if (over.length > 0)
    throw new HvError(`size budget exceeded: ${over.join('; ')}`, {
      where: profileFile,
      hint: 'minimize more (blacklist rules), drop packages, or raise "budgets" in the profile',
    });
}
