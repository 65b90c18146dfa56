// persist: keep a file, directory or symlink of the stateless image across reboots (under /config).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, dataError, ExitCode, runCli, runCommand } from '../common/index.ts';
import { hostnameToApply } from './install/settings.ts';
import {
  checkPreconditions,
  ENVIRONMENT_HELP,
  listPersisted,
  persist,
  persistOptionsFromEnv,
  resolveOptions,
  restorePersisted,
  STATELESS_NOTE,
} from './persist.ts';

const command: Command = {
  name: '',
  summary: 'keep files, directories and symlinks across reboots (under /config)',
  examples: ['persist /etc/hosts /etc/ssh/sshd_config', 'persist --list --json', 'persist --restore'],
  exitStatus: [
    [0, 'done (also when already persisted, or stateless)'],
    [1, 'failure (e.g. /config full: nothing is lost)'],
    [2, '/config not mounted, or not root'],
    [65, 'a PATH was refused'],
  ],
  help: `Usage: persist PATH...
       persist --list [--json]
       persist --restore

Stores a copy of each PATH under /config at the same path (/etc/hosts is kept as
/config/etc/hosts) and bind-mounts it over the original, so changes are written to /config
from then on; a symlink is stored as a symlink. /config/files lists the persisted paths, one
per line; it is changed only under "flock -x /config/.hvnode.lock" (a script that edits it
takes the same lock). Symlinks in the parent directories of PATH are followed, a symlink
named last is not.

Refused (nothing is changed when any PATH is): / and top-level paths (/etc, /usr, /var, ...),
/proc, /sys, /dev and /run, /config and anything in it, a path inside a persisted directory,
a directory that holds persisted paths, a path that does not exist. A path persisted already
is left as it is; one whose stored copy differs from what the system shows is stored again.

  --list      print the persisted paths, one per line
  --json      with --list: {"persisted":[{"path":"/etc/hosts","type":"file"},...]}
              (type: file, directory, symlink, or missing when /config lost the copy)
  --restore   bind-mount every listed path again and re-create the symlinks (run at boot)

With "stateless" on the kernel command line there is nothing to keep: persist does nothing.

${ENVIRONMENT_HELP}`,
  options: {
    list: { type: 'boolean' },
    json: { type: 'boolean' },
    restore: { type: 'boolean' },
  },
  run: async ({ values, positionals }) => {
    const opts = persistOptionsFromEnv();
    if (values.json && !values.list) throw dataError('--json goes with --list', 'persist');
    if (values.list && values.restore) throw dataError('--list and --restore cannot be combined', 'persist');
    if ((values.list || values.restore) && positionals.length > 0) {
      throw dataError(`--${values.list ? 'list' : 'restore'} takes no PATH`, 'persist');
    }
    if (values.list) {
      const stateless = checkPreconditions(resolveOptions(opts)) === 'stateless';
      if (stateless) process.stderr.write(`${STATELESS_NOTE}\n`);
      const entries = listPersisted(opts);
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ persisted: entries }, null, 2)}\n`);
      } else if (entries.length === 0 && !stateless) {
        process.stderr.write('There are currently no persisted files.\n');
      } else {
        process.stdout.write(entries.map((e) => `${e.path}\n`).join(''));
      }
      return ExitCode.ok;
    }
    if (values.restore) {
      const r = await restorePersisted(opts);
      if (r.stateless) return ExitCode.ok;
      // systemd named the host from the image's /etc/hostname before the persisted one was
      // mounted. Not for a test tree (HVNODE_ROOT): that would rename the test machine.
      const root = resolveOptions(opts).root;
      if (root === '/') {
        try {
          const name = hostnameToApply(r, (p) => readFileSync(join(root, p), 'utf8'));
          if (name !== undefined) {
            const set = spawnSync('hostname', [name], {
              encoding: 'utf8',
              stdio: ['ignore', 'ignore', 'pipe'],
            });
            if (set.error) throw set.error;
            if (set.status !== 0) throw new Error(set.stderr.trim() || `hostname exited with ${set.status}`);
          }
        } catch (err) {
          process.stderr.write(`persist: warning: cannot set the host name: ${(err as Error).message}\n`);
        }
      }
      const counts = `${r.restored.length} restored, ${r.unchanged.length} already in place`;
      process.stdout.write(
        `Restored the persisted paths from ${opts.configRoot}: ${counts}${r.failed.length ? `, ${r.failed.length} failed` : ''}\n`,
      );
      return r.failed.length > 0 ? ExitCode.failure : ExitCode.ok;
    }
    return persist(positionals, opts);
  },
};

await runCli('persist', (argv) => runCommand('persist', command, argv));
