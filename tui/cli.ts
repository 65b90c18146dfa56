// hvnode-setup: the console TUI (installer and setup screens).

import { runCli, runCommand } from '../common/index.ts';

await runCli('hvnode-setup', (argv) =>
  runCommand(
    'hvnode-setup',
    { name: '', summary: 'install and configure this node [--install] [--dry-run]' },
    argv,
  ),
);
