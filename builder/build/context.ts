// What every build stage gets: the validated inputs, where to work, and how to report.

import type { BuildLog } from '../exec.ts';
import type { Kickstart } from '../kickstart/index.ts';
import type { BuildProfile } from '../kickstart/profile.ts';

export interface BuildContext {
  profile: BuildProfile;
  kickstart: Kickstart;
  /** The checkout (templates, dracut module, node-runtime sources). */
  repoDir: string;
  cacheDir: string;
  workdir: string;
  log: BuildLog;
  signal: AbortSignal;
  /** Extra environment for every tool (SOURCE_DATE_EPOCH when set). */
  env: Record<string, string>;
  /** One progress line for the user. */
  say: (msg: string) => void;
}
