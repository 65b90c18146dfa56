import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { compareKernelVersions, findKernel, isolinuxConfig, kernelArgs } from '../../builder/iso.ts';
import { HvError } from '../../node-runtime/index.ts';

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
  t.regex(cfg, /^DEFAULT live$/m);
  t.regex(cfg, /APPEND initrd=initrd0\.img root=live:CDLABEL=X$/m);
  t.regex(isolinuxConfig({ title: 't', args: '', timeoutSeconds: 0 }), /^TIMEOUT 1$/m);
});
