// hvnode-config-server: PXE files, per-MAC boot configs and configuration bundles.

import { dispatch, runCli, runtimeVersion } from '../common/index.ts';

await runCli('hvnode-config-server', (argv) =>
  dispatch(
    {
      prog: 'hvnode-config-server',
      summary: 'serves PXE files, per-MAC boot configs and configuration bundles',
      version: runtimeVersion(),
      commands: [
        { name: 'serve', summary: 'serve HTTP and TFTP from a data directory' },
        { name: 'admin', summary: 'approve uploads and manage bundles' },
      ],
    },
    argv,
  ),
);
