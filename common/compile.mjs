#!/usr/bin/env node
// @ts-check
// Compiles every CLI of the package to one JavaScript file each in lib/ (esbuild), so that no
// command goes through a TypeScript loader at run time. `npm ci` (prepare), `npm pack` and
// `npm test` run it; the bin shims (common/launch.mjs) re-run it when a source changed since.
//
// The sources find their data files relative to themselves (import.meta.url / dirname /
// filename: kickstarts/, blacklist/rules/, builder/dracut/, ../package.json, ...). In a bundle
// import.meta is the bundle's, so each source that uses it gets its own: the source file's
// location, computed from the bundle's (lib/ is one level below the package root), which holds
// in the checkout and in an installed package alike.

import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(ROOT, 'lib');

/** Bin name → entry point (the bin shims import lib/<name>.mjs through common/launch.mjs). */
export const ENTRIES = {
  hvnode: 'builder/cli.ts',
  'hvnode-node': 'node-runtime/cli.ts',
  persist: 'node-runtime/persist-cli.ts',
  unpersist: 'node-runtime/unpersist-cli.ts',
  'hvnode-setup': 'tui/cli.ts',
  'hvnode-config-server': 'config-server/cli.ts',
};

/** Loaded at run time, never bundled: esbuild bundles the node runtime when an image is built. */
// term.js and pty.js: optional dependencies of blessed's Terminal widget (required only when one
// is made; hvnode-setup makes none), not installed.
const EXTERNAL = ['esbuild', 'term.js', 'pty.js'];

const META_KEYS = /** @type {const} */ (['url', 'dirname', 'filename']);

/**
 * Gives each package source that uses import.meta the location of that source (relative to the
 * bundle file), instead of the bundle's own.
 * @type {import('esbuild').Plugin}
 */
const sourceLocation = {
  name: 'hvnode-source-location',
  setup(b) {
    b.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
      if (args.path.includes('/node_modules/')) return undefined;
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta')) return undefined;
      const define = Object.fromEntries(META_KEYS.map((k) => [`import.meta.${k}`, `__hvnodeMeta_${k}`]));
      define['import.meta'] = '__hvnodeMetaOther';
      const { transform } = await import('esbuild');
      const out = await transform(source, {
        loader: 'ts',
        format: 'esm',
        define,
        sourcemap: 'inline',
        sourcefile: args.path,
      });
      const other = /__hvnodeMetaOther(?:\.(\w+))?/.exec(out.code);
      if (other)
        return {
          errors: [
            {
              text: `${relative(ROOT, args.path)}: import.meta${other[1] ? `.${other[1]}` : ''} is not supported in the compiled CLI (only ${META_KEYS.map((k) => `import.meta.${k}`).join(', ')})`,
            },
          ],
        };
      // one line, so that the source map of the rest stays right
      const rel = JSON.stringify(relative(OUT_DIR, args.path));
      const prelude =
        "import { fileURLToPath as __hvnodeToPath } from 'node:url';" +
        `const __hvnodeMeta_url = new URL(${rel}, import.meta.url).href;` +
        'const __hvnodeMeta_filename = __hvnodeToPath(__hvnodeMeta_url);' +
        "const __hvnodeMeta_dirname = __hvnodeToPath(new URL('.', __hvnodeMeta_url)).replace(/\\/$/, '');";
      return { contents: prelude + out.code, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

/**
 * @typedef {{ inputs: [string, number, number][] }} Meta  paths relative to ROOT, mtimeMs, size
 */

/** lib/<name>.meta.json: what went into lib/<name>.mjs (checkout only, not packed). */
export const metaFile = (/** @type {string} */ name) => join(OUT_DIR, `${name}.meta.json`);

/** Writes a file under a temporary name and renames it: a concurrent reader never sees half. */
function writeAtomic(/** @type {string} */ file, /** @type {string | Uint8Array} */ data) {
  const tmp = `${file}.${process.pid}.partial`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * Compiles one command to lib/<name>.mjs (+ .map) and records its inputs in lib/<name>.meta.json.
 * Each command on its own: a source that does not compile stops only the commands that use it.
 * @param {keyof typeof ENTRIES} name
 */
async function compileOne(name) {
  const started = Date.now();
  // loaded here: the bin shims import this module to check freshness on every start
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [{ out: name, in: join(ROOT, ENTRIES[name]) }],
    outdir: OUT_DIR,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    logLevel: 'silent',
    metafile: true,
    write: false,
    plugins: [sourceLocation],
    banner: {
      // bundled CommonJS dependencies (ajv, handlebars) call require(); ESM has none of its own
      js: "import { createRequire as __hvnodeCreateRequire } from 'node:module';\nconst require = __hvnodeCreateRequire(import.meta.url);",
    },
  });
  mkdirSync(OUT_DIR, { recursive: true });
  for (const f of result.outputFiles) writeAtomic(f.path, f.contents);
  const inputs = [...Object.keys(result.metafile.inputs), relative(ROOT, fileURLToPath(import.meta.url))];
  /** @type {Meta} */
  const meta = {
    inputs: inputs.map((p) => {
      const st = statSync(join(ROOT, p));
      // a source saved while esbuild read it may be in the bundle in its old form: recompile next time
      return [p, st.mtimeMs >= started ? 0 : st.mtimeMs, st.size];
    }),
  };
  writeAtomic(metaFile(name), `${JSON.stringify(meta)}\n`);
  return join(OUT_DIR, `${name}.mjs`);
}

/**
 * Compiles the named commands (all by default), side by side. When some do not compile, the
 * others are still written and the error lists every problem.
 * @param {(keyof typeof ENTRIES)[]} names
 * @returns {Promise<string[]>} the written bundles
 */
export async function compile(names = /** @type {(keyof typeof ENTRIES)[]} */ (Object.keys(ENTRIES))) {
  const results = await Promise.allSettled(names.map(compileOne));
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  if (failed.length > 0) {
    const seen = new Set();
    const messages = failed.flatMap((e) => errorLines(e)).filter((l) => !seen.has(l) && seen.add(l));
    throw Object.assign(new Error(messages.join('\n')), { lines: messages });
  }
  return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}

/**
 * Why lib/<name>.mjs is not current (the first input that changed since it was compiled, or
 * what is missing); undefined when it is.
 * @param {string} name
 * @returns {string | undefined}
 */
export function staleReason(name) {
  /** @type {Meta} */
  let meta;
  try {
    meta = JSON.parse(readFileSync(metaFile(name), 'utf8'));
    statSync(join(OUT_DIR, `${name}.mjs`));
  } catch {
    return `lib/${name}.mjs is not compiled`;
  }
  for (const [p, mtimeMs, size] of meta.inputs) {
    try {
      const st = statSync(join(ROOT, p));
      if (st.mtimeMs !== mtimeMs || st.size !== size) return `${p} changed`;
    } catch {
      return `${p} is gone`;
    }
  }
  return undefined;
}

/**
 * A failed compile as FILE:LINE: message lines.
 * @param {unknown} e
 * @returns {string[]}
 */
export function errorLines(e) {
  const lines = /** @type {{ lines?: string[] }} */ (e).lines;
  if (lines) return lines;
  const errors = /** @type {{ errors?: import('esbuild').Message[] }} */ (e).errors;
  if (!errors?.length) return [e instanceof Error ? e.message : String(e)];
  return errors.map((er) => `${er.location ? `${er.location.file}:${er.location.line}: ` : ''}${er.text}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  try {
    if (check) {
      const named = process.argv.slice(2).filter((a) => !a.startsWith('-'));
      const stale = (named.length > 0 ? named : Object.keys(ENTRIES)).flatMap((name) => {
        const why = staleReason(name);
        return why ? [`lib/${name}.mjs (${why})`] : [];
      });
      if (stale.length > 0) {
        process.stderr.write(`compile: stale: ${stale.join(', ')}: run npm run compile\n`);
        process.exitCode = 1;
      }
    } else {
      const t = Date.now();
      const out = await compile();
      process.stderr.write(`compile: ${out.length} commands in lib/ (${Date.now() - t} ms)\n`);
    }
  } catch (e) {
    for (const line of errorLines(e)) process.stderr.write(`compile: ${line}\n`);
    process.exitCode = 1;
  }
}
