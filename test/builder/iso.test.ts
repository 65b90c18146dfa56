import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { fatFitKiB, makeFatImage } from '../../builder/index.ts';
import { compareKernelVersions, findKernel, kernelArgs } from '../../builder/iso/iso.ts';
import { bootEntries, grubConfig, HvError, isolinuxConfig } from '../../common/index.ts';

test('kernel versions compare numerically', (t) => {
  const v = ['6.1.0-9-amd64', '6.1.0-50-amd64', '5.10.0-1-amd64', '6.1.0-10-amd64'].sort(
    compareKernelVersions,
  );
  t.deepEqual(v, ['5.10.0-1-amd64', '6.1.0-9-amd64', '6.1.0-10-amd64', '6.1.0-50-amd64']);
});

test('findKernel takes the newest kernel and wants its initramfs', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'hvnode-root-'));
  mkdirSync(join(root, 'boot'));
  t.throws(() => findKernel(root), { instanceOf: HvError, message: /no kernel/ });
  for (const v of ['6.1.0-9-amd64', '6.1.0-10-amd64']) writeFileSync(join(root, 'boot', `vmlinuz-${v}`), '');
  t.throws(() => findKernel(root), { message: /no initramfs for kernel 6\.1\.0-10-amd64/ });
  writeFileSync(join(root, 'boot', 'initrd.img-6.1.0-10-amd64'), '');
  t.is(findKernel(root).version, '6.1.0-10-amd64');
});

test('kernel args boot the live image from its label on screen and serial', (t) => {
  t.is(
    kernelArgs('HVNODE', 'quiet'),
    'root=live:CDLABEL=HVNODE rd.live.image console=tty0 console=ttyS0,115200n8 quiet',
  );
  t.is(kernelArgs('X', undefined), 'root=live:CDLABEL=X rd.live.image console=tty0 console=ttyS0,115200n8');
});

test('isolinux starts the default entry by itself; a zero timeout never means "wait forever"', (t) => {
  const cfg = isolinuxConfig({ title: 'hvnode 1', args: 'root=live:CDLABEL=X', timeoutSeconds: 3 });
  t.regex(cfg, /^TIMEOUT 30$/m);
  t.regex(cfg, /^SERIAL 0 115200$/m);
  t.regex(cfg, /^DEFAULT install$/m);
  t.regex(cfg, /APPEND initrd=initrd0\.img root=live:CDLABEL=X$/m);
  t.regex(isolinuxConfig({ title: 't', args: '', timeoutSeconds: 0 }), /^TIMEOUT 1$/m);
});

test("the boot menu offers oVirt Node's entries, each with the image's kernel args", (t) => {
  const args = 'root=live:CDLABEL=X rd.live.image console=tty0 console=ttyS0,115200n8 quiet';
  const entries = bootEntries('hvnode 1', args);
  t.deepEqual(
    entries.map((e) => e.id),
    ['install', 'basic-video', 'serial', 'reinstall', 'uninstall', 'rescue'],
  );
  for (const e of entries) t.true(e.args.startsWith('root=live:CDLABEL=X rd.live.image'), e.id);
  t.is(entries.find((e) => e.id === 'basic-video')?.args, `${args} nomodeset`);
  t.is(
    entries.find((e) => e.id === 'serial')?.args,
    'root=live:CDLABEL=X rd.live.image console=ttyS0,115200n8 quiet',
  );
  t.regex(entries.find((e) => e.id === 'reinstall')?.args ?? '', / reinstall$/);
  t.regex(entries.find((e) => e.id === 'uninstall')?.args ?? '', / uninstall$/);
  t.regex(entries.find((e) => e.id === 'rescue')?.args ?? '', / rescue /);
  const cfg = isolinuxConfig({ title: 'hvnode 1', args, timeoutSeconds: 1 });
  t.is(cfg.match(/^LABEL /gm)?.length, 6);
  t.is(cfg.match(/MENU DEFAULT/g)?.length, 1);
  const grub = grubConfig({ entries, timeoutSeconds: 0, kernel: '/k', initrd: '/i' });
  t.regex(grub, /^set timeout=1$/m);
  t.is(grub.match(/^menuentry /gm)?.length, 6);
  t.regex(grub, /^menuentry 'Install or upgrade hvnode 1' --id install \{\n {2}linux \/k root=live/m);
  t.regex(
    grubConfig({
      entries: [{ id: 'x', label: "it's", args: '' }],
      timeoutSeconds: 1,
      kernel: 'k',
      initrd: 'i',
    }),
    /'it'\\''s'/,
  );
});

test('a FAT image made without a size fits its files, with little room to spare', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hvnode-fat-'));
  const files: Record<string, string> = {};
  // sizes around the cluster boundaries, and one the size of a GRUB EFI image
  for (const [i, size] of [0, 1, 4095, 4097, 757760].entries()) {
    const host = join(dir, `f${i}`);
    writeFileSync(host, Buffer.alloc(size, i + 1));
    files[`/EFI/BOOT/F${i}.BIN`] = host;
  }
  files['/EFI/X/deep/g.cfg'] = join(dir, 'f1');
  const out = join(dir, 'fat.img');
  await makeFatImage({ out, label: 'EFIBOOT', files });
  const total = Object.values(files).reduce((n, f) => n + statSync(f).size, 0);
  t.true(statSync(out).size < total + 256 * 1024, `${statSync(out).size} bytes for ${total}`);
  for (const [inside, host] of Object.entries(files)) {
    const back = execFileSync('mtype', ['-i', out, `::${inside}`], {
      env: { ...process.env, MTOOLS_SKIP_CHECK: '1' },
    });
    t.true(back.equals(readFileSync(host)), inside);
  }
  t.is(fatFitKiB([], 0), 64);
  t.is(fatFitKiB([1], 1), 128);
});
