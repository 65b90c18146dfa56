// The on-node runtime as one file for the node's nodejs (Debian bookworm ships Node 18):
// no node_modules on the node.

import { join } from 'node:path';
import { build } from 'esbuild';
import { runtimeVersion } from '../node-runtime/index.ts';

export async function bundleRuntime(repoDir: string, outFile: string): Promise<void> {
  await build({
    entryPoints: [join(repoDir, 'node-runtime', 'cli.ts')],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    minify: false,
    legalComments: 'none',
    logLevel: 'silent',
    banner: {
      js: "#!/usr/bin/node\nimport { createRequire as __hvnodeCreateRequire } from 'node:module';\nconst require = __hvnodeCreateRequire(import.meta.url);",
    },
    define: { HVNODE_RUNTIME_VERSION: JSON.stringify(runtimeVersion()) },
  });
}
