// The on-node CLIs, each as one file for the node's nodejs (Debian bookworm ships Node 18):
// no node_modules on the node.

import { join } from 'node:path';
import { runtimeVersion } from '../../common/index.ts';

/** Installed name on the node → entry point (repository-relative). */
export const NODE_COMMANDS: Record<string, string> = {
  'hvnode-node': 'node-runtime/cli.ts',
  persist: 'node-runtime/persist-cli.ts',
  unpersist: 'node-runtime/unpersist-cli.ts',
  // the console TUI (blessed, bundled too); blessed's Terminal widget's optional term.js and
  // pty.js are left out: hvnode-setup makes no Terminal
  'hvnode-setup': 'tui/cli.ts',
};

/** Writes OUTDIR/<name>.mjs for every on-node command. */
export async function bundleRuntime(repoDir: string, outDir: string): Promise<string[]> {
  const entryPoints = Object.entries(NODE_COMMANDS).map(([out, src]) => ({
    out,
    in: join(repoDir, src),
  }));
  // loaded here, not when every hvnode command starts
  const { build } = await import('esbuild');
  await build({
    entryPoints,
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    minify: false,
    legalComments: 'none',
    logLevel: 'silent',
    external: ['term.js', 'pty.js'],
    banner: {
      // bundled CommonJS dependencies (ajv) call require(); ESM has none of its own
      js: "#!/usr/bin/node\nimport { createRequire as __hvnodeCreateRequire } from 'node:module';\nconst require = __hvnodeCreateRequire(import.meta.url);",
    },
    define: { HVNODE_RUNTIME_VERSION: JSON.stringify(runtimeVersion()) },
  });
  return Object.keys(NODE_COMMANDS).map((name) => join(outDir, `${name}.mjs`));
}
