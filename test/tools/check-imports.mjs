#!/usr/bin/env node
// Lint rule the formatter cannot express: a component (a top-level folder) imports another
// component only through that folder's index.ts, and common/ imports no other component.
// Tests may reach into internals. Prints FILE:LINE for each offending import; exit 1 if any.
// Usage: check-imports.mjs [REPO] (default: this checkout); `npm run lint` runs it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const REPO = resolve(process.argv[2] ?? join(import.meta.dirname, '../..'));
const COMPONENTS = ['builder', 'node-runtime', 'common', 'manifests', 'blacklist', 'config-server', 'tui'];
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;

function* sources(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') yield* sources(p);
    else if (e.isFile() && /\.ts$/.test(e.name)) yield p;
  }
}

const componentOf = (file) => relative(REPO, file).split(sep)[0];
const problems = [];
for (const component of COMPONENTS.filter((c) => existsSync(join(REPO, c)))) {
  for (const file of sources(join(REPO, component))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const target = resolve(dirname(file), m[1]);
      const to = componentOf(target);
      if (to === component || !COMPONENTS.includes(to)) continue;
      const line = text.slice(0, m.index).split('\n').length;
      const where = `${relative(REPO, file)}:${line}`;
      if (component === 'common')
        problems.push(`${where}: common/ imports ${m[1]}: the shared kernel depends on no component`);
      else if (relative(REPO, target) !== `${to}/index.ts`)
        problems.push(
          `${where}: imports ${m[1]}: import ${to}/index.ts instead (export what you need there)`,
        );
    }
  }
}
for (const p of problems) console.error(p);
if (problems.length > 0) {
  console.error(`check-imports: ${problems.length} import(s) reach into another component's internals`);
  process.exit(1);
}
