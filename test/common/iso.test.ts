// The one ISO reader (common/iso.ts) on an ISO made by xorriso.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { extractFromIso, listIsoFiles, run, ToolError, unquoteXorriso } from '../../common/index.ts';

function makeIso(t: { teardown(fn: () => void): void }): { dir: string; iso: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-iso-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'isolinux'), { recursive: true });
  writeFileSync(join(tree, 'isolinux', 'manifest-rpm.txt'), 'a\nb\n');
  writeFileSync(join(tree, 'isolinux', "it's here"), 'quote');
  writeFileSync(join(tree, 'big'), Buffer.alloc(5000, 1));
  return { dir, iso: join(dir, 't.iso') };
}

test('lists the files with their sizes and extracts them, a quote in a name too', async (t) => {
  const { dir, iso } = makeIso(t);
  await run('xorriso', ['-as', 'mkisofs', '-quiet', '-r', '-o', iso, join(dir, 'tree')]);
  const files = await listIsoFiles(iso);
  t.deepEqual([...files].sort(), [
    ['/big', 5000],
    ["/isolinux/it's here", 5],
    ['/isolinux/manifest-rpm.txt', 4],
  ]);
  t.deepEqual([...(await listIsoFiles(iso, { under: '/isolinux' })).keys()].sort(), [
    "/isolinux/it's here",
    '/isolinux/manifest-rpm.txt',
  ]);
  const out = join(dir, 'out');
  await extractFromIso(
    iso,
    [
      ["/isolinux/it's here", join(out, 'a', 'q')],
      ['/big', join(out, 'big')],
    ],
    { mode: 0o644 },
  );
  t.is(readFileSync(join(out, 'a', 'q'), 'utf8'), 'quote');
  t.is(statSync(join(out, 'big')).mode & 0o777, 0o644);
  await extractFromIso(iso, [['/', join(out, 'all')]]);
  t.is(readFileSync(join(out, 'all', 'isolinux', 'manifest-rpm.txt'), 'utf8'), 'a\nb\n');
});

test('a file that is no ISO has no files; a missing path is a ToolError', async (t) => {
  const { dir, iso } = makeIso(t);
  writeFileSync(iso, 'not an iso');
  t.is((await listIsoFiles(iso)).size, 0);
  const err = await t.throwsAsync(extractFromIso(iso, [['/nothing', join(dir, 'x')]]));
  t.true(err instanceof ToolError);
  t.regex(err?.message ?? '', /^xorriso \(extracting from the ISO\) failed/);
});

test('unquoteXorriso', (t) => {
  t.is(unquoteXorriso(`-r--r--r-- 1 0 0 2 Nov 29 20:33 '/sub/it'"'"'s x'`), "/sub/it's x");
  t.is(unquoteXorriso('no path here'), undefined);
});
