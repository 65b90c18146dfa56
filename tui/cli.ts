// hvnode-setup: the console TUI (installer and setup screens; not built yet).

import { runCli, runCommand } from '../common/index.ts';

await runCli('hvnode-setup', (argv) =>
  runCommand(
    'hvnode-setup',
    {
      name: '',
      summary: 'install and configure this node from the console',
      help: 'Usage: hvnode-setup [--install] [--dry-run]',
      options: { install: { type: 'boolean' }, 'dry-run': { type: 'boolean', short: 'n' } },
      examples: ['hvnode-setup', 'hvnode-setup --install --dry-run'],
    },
    argv,
  ),
);
