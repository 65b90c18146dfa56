// hvnode-config-server: PXE files, per-MAC boot configs and configuration bundles.
// `serve` runs the server; `admin` (admin.ts) manages a data directory or a running server.

import { dispatch, type Program, runCli, runtimeVersion } from '../common/index.ts';
import { adminArgv, adminCommand } from './admin.ts';
import { caFromEnvironment, RemoteAdminApi } from './admin-remote.ts';
import { serveCommand } from './serve.ts';

const program: Program = {
  prog: 'hvnode-config-server',
  summary: 'serves PXE files, per-MAC boot configs and configuration bundles',
  version: runtimeVersion(),
  examples: [
    'hvnode-config-server admin --data /srv/hvnode image add dist/hvnode-0.1.0.iso',
    'hvnode-config-server serve --help',
  ],
  commands: [
    serveCommand,
    adminCommand({ remote: (url, token) => new RemoteAdminApi(url, token, { caPem: caFromEnvironment() }) }),
  ],
};

await runCli('hvnode-config-server', (argv) => dispatch(program, adminArgv(argv)));
