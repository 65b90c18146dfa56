// unpersist: stop keeping a path under /config; the system keeps its content until the next boot.

import { type Command, runCli, runCommand } from '../common/index.ts';
import { ENVIRONMENT_HELP, persistOptionsFromEnv, unpersist } from './persist.ts';

const command: Command = {
  name: '',
  summary: 'stop keeping persisted paths across reboots',
  examples: ['unpersist /etc/hosts', 'unpersist /etc/ssh/sshd_config /etc/hosts'],
  exitStatus: [
    [0, 'done (also stateless)'],
    [1, 'failure'],
    [2, '/config not mounted, or not root'],
    [65, 'a PATH was refused'],
  ],
  help: `Usage: unpersist PATH...

Undoes "persist PATH": the bind mount is taken off, PATH keeps the content it had while
persisted (until the next boot, when the image's version comes back), PATH leaves
/config/files and its copy is deleted from /config. A symlink is left as it is.

Refused (nothing is changed when any PATH is): a path that is not persisted, or only
inside a persisted directory (unpersist the directory), or when nothing is persisted.
With "stateless" on the kernel command line there is nothing to undo: it does nothing.

${ENVIRONMENT_HELP}`,
  run: async ({ positionals }) => unpersist(positionals, persistOptionsFromEnv()),
};

await runCli('unpersist', (argv) => runCommand('unpersist', command, argv));
