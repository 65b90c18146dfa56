// hvnode-config-server: PXE files, per-MAC boot configs and configuration bundles (not built yet).

import { dispatch, runCli, runtimeVersion } from '../common/index.ts';

await runCli('hvnode-config-server', (argv) =>
  dispatch(
    {
      prog: 'hvnode-config-server',
      summary: 'serves PXE files, per-MAC boot configs and configuration bundles',
      version: runtimeVersion(),
      examples: ['hvnode-config-server serve --help', 'hvnode-config-server --version'],
      commands: [
        {
          name: 'serve',
          summary: 'serve HTTP and TFTP from a data directory',
          help: 'Usage: hvnode-config-server serve',
          examples: ['hvnode-config-server serve'],
        },
        {
          name: 'admin',
          summary: 'approve uploads and manage bundles',
          help: 'Usage: hvnode-config-server admin',
          examples: ['hvnode-config-server admin'],
        },
      ],
    },
    argv,
  ),
);
