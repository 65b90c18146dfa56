import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';

const SCRIPT = join(import.meta.dirname, 'check-imports.mjs');

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'hvnode-imports-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('imports of another component go through its index.ts; common/ depends on no component', async (t) => {
  const root = tree({
    'common/index.ts': "export * from './errors.ts';\n",
    'common/errors.ts': "import { x } from '../builder/index.ts';\nexport const e = x;\n",
    'builder/index.ts': 'export const x = 1;\n',
    'builder/iso/iso.ts':
      "import { e } from '../../common/index.ts';\n\nimport { y } from '../../node-runtime/install/run.ts';\n",
    'node-runtime/index.ts': "export { y } from './install/run.ts';\n",
    'node-runtime/install/run.ts': "export const y = await import('../../manifests/write.ts');\n",
    'manifests/write.ts': 'export const w = 1;\n',
    'test/x.test.ts': "import { y } from '../node-runtime/install/run.ts';\n",
  });
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const r = await execa('node', [SCRIPT, root], { reject: false });
  t.is(r.exitCode, 1);
  const lines = r.stderr.split('\n');
  t.true(
    lines.includes(
      'common/errors.ts:1: common/ imports ../builder/index.ts: the shared kernel depends on no component',
    ),
  );
  t.true(
    lines.some((l) =>
      l.startsWith(
        'builder/iso/iso.ts:3: imports ../../node-runtime/install/run.ts: import node-runtime/index.ts',
      ),
    ),
  );
  t.true(lines.some((l) => l.startsWith('node-runtime/install/run.ts:1: imports ../../manifests/write.ts')));
  t.false(r.stderr.includes('test/x.test.ts'), 'tests may import internals');
  t.false(r.stderr.includes('iso.ts:1'), 'common/index.ts is allowed');
  t.regex(r.stderr, /3 import\(s\) reach into another component's internals/);
});

test('this checkout has no import across component internals', async (t) => {
  const r = await execa('node', [SCRIPT], { reject: false });
  t.is(r.stderr, '');
  t.is(r.exitCode, 0);
});
