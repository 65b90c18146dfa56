import test from 'ava';
import { HvError } from '../../common/index.ts';
import { parseCmdline, type VolumeSizes } from '../../node-runtime/config/index.ts';
import {
  defaultSwapMiB,
  formatLayout,
  type Layout,
  type LayoutInput,
  PART_TYPE,
  partitionPath,
  planLayout,
  sfdiskScript,
} from '../../node-runtime/install/layout.ts';

const GiB = 1024 ** 3;
const disk = (path: string, gib: number) => ({ path, sizeBytes: gib * GiB });

function lvSizes(layout: Layout, vg = 'HostVG'): Record<string, number> {
  const plan = layout.vgs.find((v) => v.name === vg);
  return Object.fromEntries((plan?.lvs ?? []).map((lv) => [lv.name, lv.sizeMiB]));
}

function volumes(cmdline: string): VolumeSizes | undefined {
  const r = parseCmdline(cmdline);
  if (r.errors.length > 0) throw new Error(r.errors[0]?.message);
  return r.config.storage?.volumes;
}

function layoutError(t: import('ava').ExecutionContext, input: LayoutInput): HvError {
  const err = t.throws(() => planLayout(input), { instanceOf: HvError }) as HvError;
  t.is(err.exitCode, 65);
  return err;
}

test("swap: oVirt's base by RAM plus RAM × mem_overcommit (0.5 by default)", (t) => {
  t.is(defaultSwapMiB(2048), 2048 + 1024);
  t.is(defaultSwapMiB(4095), 2048 + 2047);
  t.is(defaultSwapMiB(4096), 4096 + 2048);
  t.is(defaultSwapMiB(16384), 8192 + 8192);
  t.is(defaultSwapMiB(65536), 16384 + 32768);
  t.is(defaultSwapMiB(8192, 0), 4096);
  t.is(defaultSwapMiB(8192, 1.5), 4096 + 12288);
});

// Boot disk: GPT 2 + BIOS boot 1 + EFI 256 + Root 512 + RootBackup 512 = 1283 MiB; the PV gets
// the rest, less 1 MiB of LVM metadata, in 4 MiB extents. Config 5 MB is one 8 MiB... two extents.
const defaults: [number, number, Record<string, number> | RegExp][] = [
  [8, 2, { Swap: 3072, Config: 8, Logging: 2048, Data: 6908 - 5128 }],
  [
    8,
    16,
    /HostVG is overcommitted: Swap 16384 \+ Config 8 \+ Logging 2048 = 18440 MiB, but HostVG holds 6\.7 GiB/,
  ],
  [8, 64, /HostVG is overcommitted: Swap 49152 /],
  [20, 2, { Swap: 3072, Config: 8, Logging: 2048, Data: 19196 - 5128 }],
  [20, 16, { Swap: 16384, Config: 8, Logging: 2048, Data: 19196 - 18440 }],
  [20, 64, /HostVG is overcommitted: Swap 49152 \+ Config 8 \+ Logging 2048 = 51208 MiB/],
  [100, 2, { Swap: 3072, Config: 8, Logging: 2048, Data: 101116 - 5128 }],
  [100, 16, { Swap: 16384, Config: 8, Logging: 2048, Data: 101116 - 18440 }],
  [100, 64, { Swap: 49152, Config: 8, Logging: 2048, Data: 101116 - 51208 }],
];

for (const [diskGiB, ramGiB, want] of defaults) {
  test(`defaults: ${diskGiB} GiB disk, ${ramGiB} GiB RAM`, (t) => {
    const input = { hostVG: [disk('/dev/sda', diskGiB)], ramMiB: ramGiB * 1024 };
    if (want instanceof RegExp) {
      const err = layoutError(t, input);
      t.regex(err.diagnostics.map((d) => d.message).join('\n'), want);
      t.regex(err.diagnostics[0]?.hint ?? '', /storage_vol=.*mem_overcommit/);
      t.regex(err.diagnostics[0]?.hint ?? '', /Swap is \d+ \+ RAM \d+ MiB × mem_overcommit 0\.5/);
      return;
    }
    const layout = planLayout(input);
    t.deepEqual(lvSizes(layout), want);
    const [boot] = layout.disks;
    t.deepEqual(
      boot?.partitions.map((p) => [p.number, p.name, p.sizeMiB, p.typeGuid]),
      [
        [1, 'BIOS boot', 1, PART_TYPE.biosBoot],
        [2, 'EFI', 256, PART_TYPE.efi],
        [3, 'Root', 512, PART_TYPE.linux],
        [4, 'RootBackup', 512, PART_TYPE.linux],
        [5, 'HostVG', diskGiB * 1024 - 1283, PART_TYPE.lvm],
      ],
    );
    t.deepEqual(layout.vgs[0]?.pvs, ['/dev/sda5']);
    t.is(layout.vgs.length, 1, 'no AppVG without its disks');
    t.true(layout.vgs[0]?.lvs.find((l) => l.name === 'Data')?.rest);
    t.deepEqual(
      layout.vgs[0]?.lvs.map((l) => [l.fs.type, l.fs.label, l.fs.mount]),
      [
        ['swap', 'Swap', undefined],
        ['ext4', 'Config', '/config'],
        ['ext4', 'Logging', '/var/log'],
        ['ext4', 'Data', '/data'],
      ],
    );
  });
}

test('storage_vol positional: BOOT:SWAP:ROOT:CONFIG:LOGGING:DATA, empty fields keep the default', (t) => {
  const layout = planLayout({
    hostVG: [disk('/dev/sda', 20)],
    ramMiB: 65536,
    volumes: volumes('storage_vol=:4096:1024:16:1000:4000'),
  });
  t.deepEqual(lvSizes(layout), { Swap: 4096, Config: 16, Logging: 1000, Data: 4000 });
  t.false(layout.vgs[0]?.lvs.find((l) => l.name === 'Data')?.rest);
  t.deepEqual(
    layout.disks[0]?.partitions.filter((p) => p.name.startsWith('Root')).map((p) => p.sizeMiB),
    [1024, 1024],
  );
  t.is(layout.sizes.efi, 256);
});

test('storage_vol named: SIZE,Name items; 0 = none; -1 = the rest', (t) => {
  const layout = planLayout({
    hostVG: [disk('/dev/sda', 20)],
    ramMiB: 2048,
    volumes: volumes('storage_vol=2048,Swap:0,Logging:-1,Data:128,EFI'),
  });
  // EFI 128: the PV has 128 MiB more than by default
  t.deepEqual(lvSizes(layout), { Swap: 2048, Config: 8, Data: 19196 + 128 - 2056 });
  t.is(layout.disks[0]?.partitions.find((p) => p.name === 'EFI')?.sizeMiB, 128);
});

test('AppVG on the disks after ";": Data2 takes the rest, Swap2 only when given', (t) => {
  const base = { hostVG: [disk('/dev/sda', 20)], appVG: [disk('/dev/sdb', 4), disk('/dev/nvme0n1', 4)] };
  const layout = planLayout({ ...base, ramMiB: 2048 });
  t.deepEqual(
    layout.disks.map((d) => [d.path, d.role, d.partitions.map((p) => p.name)]),
    [
      ['/dev/sda', 'boot', ['BIOS boot', 'EFI', 'Root', 'RootBackup', 'HostVG']],
      ['/dev/sdb', 'AppVG', ['AppVG']],
      ['/dev/nvme0n1', 'AppVG', ['AppVG']],
    ],
  );
  t.deepEqual(layout.vgs[1]?.pvs, ['/dev/sdb1', '/dev/nvme0n1p1']);
  // each 4 GiB disk: 4096 - 2 (GPT) = 4094 MiB partition, 4092 MiB of extents
  t.deepEqual(lvSizes(layout, 'AppVG'), { Data2: 2 * 4092 });
  const swap2 = planLayout({ ...base, ramMiB: 2048, volumes: volumes('storage_vol=::::::1000:0') });
  t.deepEqual(lvSizes(swap2, 'AppVG'), { Swap2: 1000 });
});

test('more HostVG disks: the boot disk is the first, the others are physical volumes', (t) => {
  const layout = planLayout({ hostVG: [disk('/dev/sda', 8), disk('/dev/sdb', 8)], ramMiB: 8192 });
  t.deepEqual(layout.vgs[0]?.pvs, ['/dev/sda5', '/dev/sdb1']);
  t.is(layout.vgs[0]?.sizeMiB, 6908 + 8188);
  // Swap 4096 + 4096 does not fit one 8 GiB disk with the rest, it fits two
  t.is(lvSizes(layout).Data, 6908 + 8188 - 8192 - 2056);
});

test('EFI 0: no EFI partition, the others move up, and the plan says so', (t) => {
  const layout = planLayout({ hostVG: [disk('/dev/vda', 8)], ramMiB: 2048, volumes: { efi: 0 } });
  t.deepEqual(
    layout.disks[0]?.partitions.map((p) => `${p.number}:${p.name}`),
    ['1:BIOS boot', '2:Root', '3:RootBackup', '4:HostVG'],
  );
  t.regex(layout.notes.join('\n'), /no EFI system partition/);
});

test('Boot (iSCSI) is noted, not created', (t) => {
  const layout = planLayout({ hostVG: [disk('/dev/sda', 20)], ramMiB: 2048, volumes: { boot: 50 } });
  t.regex(layout.notes.join('\n'), /Boot \(50 MB\) is for iSCSI installs/);
});

test('errors name the volume, the sizes and what to do, all of them at once', (t) => {
  const small = layoutError(t, { hostVG: [disk('/dev/sda', 1)], ramMiB: 2048, volumes: { root: 0 } });
  const messages = small.diagnostics.map((d) => d.message);
  t.true(messages.some((m) => /Root cannot be 0/.test(m)));
  t.true(messages.some((m) => /HostVG is overcommitted/.test(m)));

  const tiny = layoutError(t, { hostVG: [disk('/dev/sda', 1)], ramMiB: 2048 });
  t.regex(
    tiny.diagnostics[0]?.message ?? '',
    /the boot disk \/dev\/sda \(1\.0 GiB\) is too small: BIOS boot 1 \+ EFI 256 \+ Root 512 \+ RootBackup 512 \+ GPT 2 = 1283 MiB/,
  );
  t.regex(tiny.diagnostics[0]?.hint ?? '', /larger than 1\.3 GiB.*storage_vol=::ROOT_MB/);

  const full = layoutError(t, {
    hostVG: [disk('/dev/sda', 8)],
    ramMiB: 2048,
    volumes: { swap: 6908 - 2056 },
  });
  t.regex(full.diagnostics[0]?.message ?? '', /HostVG has no room left for Data \(-1 = the rest\)/);
  t.regex(full.diagnostics[0]?.hint ?? '', /no Data at all \(0\)/);

  const app = layoutError(t, { hostVG: [disk('/dev/sda', 20)], ramMiB: 2048, volumes: { swap2: 512 } });
  t.regex(app.diagnostics[0]?.message ?? '', /Swap2 \(512 MB\) goes in AppVG, which has no disks/);
  t.regex(app.diagnostics[0]?.hint ?? '', /storage_init=\/dev\/sda;\/dev\/sdb/);

  const appFull = layoutError(t, {
    hostVG: [disk('/dev/sda', 20)],
    appVG: [disk('/dev/sdb', 1)],
    ramMiB: 2048,
    volumes: { swap2: 2048 },
  });
  t.regex(
    appFull.diagnostics[0]?.message ?? '',
    /AppVG is overcommitted: Swap2 2048 = 2048 MiB, but AppVG holds/,
  );

  const config = layoutError(t, { hostVG: [disk('/dev/sda', 20)], ramMiB: 2048, volumes: { config: 0 } });
  t.regex(config.diagnostics[0]?.message ?? '', /Config cannot be 0/);
  t.throws(() => planLayout({ hostVG: [], ramMiB: 2048 }), { message: /cannot lay out/ });
});

test('partition paths: a digit at the end of the disk name takes a "p"', (t) => {
  t.is(partitionPath('/dev/sda', 1), '/dev/sda1');
  t.is(partitionPath('/dev/vdb', 12), '/dev/vdb12');
  t.is(partitionPath('/dev/nvme0n1', 1), '/dev/nvme0n1p1');
  t.is(partitionPath('/dev/loop7', 5), '/dev/loop7p5');
  t.is(partitionPath('/dev/mmcblk0', 2), '/dev/mmcblk0p2');
});

test('sfdisk script: GPT, sizes in MiB, GPT types and names, the last takes the rest', (t) => {
  const layout = planLayout({ hostVG: [disk('/dev/sda', 20)], ramMiB: 2048 });
  const [boot] = layout.disks;
  t.is(
    sfdiskScript(boot as NonNullable<typeof boot>),
    [
      'label: gpt',
      `size=1MiB, type=${PART_TYPE.biosBoot}, name="BIOS boot"`,
      `size=256MiB, type=${PART_TYPE.efi}, name="EFI"`,
      `size=512MiB, type=${PART_TYPE.linux}, name="Root"`,
      `size=512MiB, type=${PART_TYPE.linux}, name="RootBackup"`,
      `type=${PART_TYPE.lvm}, name="HostVG"`,
      '',
    ].join('\n'),
  );
});

test('the plan as text lists every partition and logical volume with its size and use', (t) => {
  const text = formatLayout(planLayout({ hostVG: [disk('/dev/sda', 20)], ramMiB: 2048 }));
  t.regex(text, /^Disk \/dev\/sda \(20\.0 GiB, boot disk, GPT\):$/m);
  t.regex(text, /\/dev\/sda2 +EFI +256 MiB +vfat "EFI" → \/boot\/efi/);
  t.regex(text, /^Volume group HostVG \(18\.7 GiB on \/dev\/sda5\):$/m);
  t.regex(text, /\/dev\/HostVG\/Config +8 MiB +ext4 "Config" → \/config/);
  t.regex(text, /\/dev\/HostVG\/Data +~13\.7 GiB +ext4 "Data" → \/data/);
});
