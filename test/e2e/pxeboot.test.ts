// End to end: turn the test ISO into network-boot trees with `hvnode iso-to-pxeboot`, then boot
// them the way a machine on the network does, through QEMU's PXE ROM (iPXE):
// - tftpboot/: pxelinux.0 from QEMU's own TFTP server, then the kernel and the initrd that
//   carries the ISO; dracut loop-mounts the ISO from the initramfs.
// - http/: iPXE fetches boot.ipxe, the kernel and the initrd over HTTP; dracut's livenet
//   fetches squashfs.img. The HTTP server runs on the host; QEMU's guestfwd (one netcat per
//   connection) carries the guest's connections to it.

import { createReadStream, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { cli, REPO, requireRoot, requireTools } from '../helpers/env.ts';
import { bootToReady } from '../helpers/qemu.ts';
import { testIso } from '../helpers/test-iso.ts';

const TOOLS = {
  mmdebstrap: 'mmdebstrap',
  mksquashfs: 'squashfs-tools',
  xorriso: 'xorriso',
  'qemu-system-x86_64': 'qemu-system-x86',
  nc: 'netcat-openbsd',
};
const NIC_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom';
/** Where the guest sees the host's HTTP server (QEMU user network, guestfwd). */
const HTTP_HOST = '10.0.2.100';
const VERSION = '0.1.0';

interface Summary {
  files: { path: string; bytes: number }[];
  seconds: number;
}

const mib = (n = 0) => `${(n / 2 ** 20).toFixed(1)} MiB`;
// made when a test first needs it: a run whose --match leaves these tests out (so that no
// after hook runs) leaves nothing in /var/tmp
let baseDir: string | undefined;
const base = () => {
  baseDir ??= mkdtempSync('/var/tmp/hvnode-e2e-pxe-');
  return baseDir;
};
test.after.always(() => {
  if (baseDir) rmSync(baseDir, { recursive: true, force: true });
});

let made: Promise<{ out: string; summary: Summary; error?: string }> | undefined;

/** One iso-to-pxeboot run of the test ISO, shared by both boots. */
function pxeTree() {
  made ??= (async () => {
    const { iso } = await testIso();
    const out = join(base(), 'pxe');
    const r = await execa(
      'node',
      [cli('hvnode'), 'iso-to-pxeboot', iso, '--out', out, '--http-url', `http://${HTTP_HOST}`, '--json'],
      { reject: false, cwd: REPO },
    );
    if (r.exitCode !== 0) return { out, summary: { files: [], seconds: 0 }, error: r.stderr };
    return { out, summary: JSON.parse(r.stdout) as Summary };
  })();
  return made;
}

function preconditions(t: ExecutionContext): void {
  requireRoot(t);
  requireTools(t, TOOLS);
  if (!existsSync(NIC_ROM)) t.fail(`${NIC_ROM} is missing: apt-get install ipxe-qemu`);
  if (!existsSync('/usr/lib/PXELINUX/pxelinux.0')) t.fail('pxelinux is missing: apt-get install pxelinux');
}

/** A static server for one folder's files (by exact name only), on a free port of 127.0.0.1. */
async function serveFolder(dir: string, log: string[]): Promise<{ server: Server; port: number }> {
  const names = new Set(readdirSync(dir));
  const server = createServer((req, res) => {
    const name = (req.url ?? '/').slice(1);
    log.push(`${req.method} ${req.url}`);
    if (!names.has(name)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': statSync(join(dir, name)).size });
    createReadStream(join(dir, name)).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

test.serial(
  'e2e: the tftpboot/ tree boots over PXE (iPXE ROM, pxelinux, TFTP) to "hvnode: ready <version> pxe"',
  async (t) => {
    preconditions(t);
    const { out, summary, error } = await pxeTree();
    t.is(error, undefined, 'iso-to-pxeboot failed');
    const size = (p: string) => summary.files.find((f) => f.path === p)?.bytes ?? 0;
    t.true(
      size('tftpboot/initrd0.img') > size('http/initrd0.img') + 50 * 2 ** 20,
      'the ISO rides in the initrd',
    );
    t.log(
      `iso-to-pxeboot: ${summary.seconds} s; initrd ${mib(size('http/initrd0.img'))} alone, ${mib(size('tftpboot/initrd0.img'))} with the ISO`,
    );

    const boot = await bootToReady({
      media: ['-boot', 'n'],
      nic: [
        '-nic',
        `user,restrict=on,tftp=${join(out, 'tftpboot')},bootfile=pxelinux.0,model=virtio-net-pci`,
      ],
      serialLog: join(base(), 'tftp-serial.log'),
      memoryMiB: 2048,
      deadlineSeconds: 600,
      // pxelinux draws its menu on the serial port once it has its config; the kernel's banner
      // shows once vmlinuz0 and initrd0.img have come over TFTP
      marks: { menu: /Install or upgrade/, kernel: /Linux version \d/ },
    });
    t.deepEqual(
      boot.readyLines,
      [`hvnode: ready ${VERSION} pxe`],
      'exactly one ready line on the serial port',
    );
    t.regex(boot.log, /Command line: .*root=live:\/hvnode-test-0\.1\.0\.iso rootflags=loop rd\.live\.image/);
    const { menu, kernel } = boot.marks;
    const tftp =
      menu !== undefined && kernel !== undefined
        ? ` (kernel + initrd over TFTP: ~${Math.round((kernel - menu) * 10) / 10} s)`
        : '';
    t.log(
      `boot to ready (PXE, TFTP): ${boot.seconds} s; pxelinux menu at ${menu ?? '?'} s, kernel at ${kernel ?? '?'} s${tftp}`,
    );
  },
);

test.serial(
  'e2e: the http/ tree boots through iPXE and dracut livenet to "hvnode: ready <version> pxe"',
  async (t) => {
    preconditions(t);
    const { out, error } = await pxeTree();
    t.is(error, undefined, 'iso-to-pxeboot failed');
    const requests: string[] = [];
    const { server, port } = await serveFolder(join(out, 'http'), requests);
    t.teardown(() => server.close());
    const nic = [
      `user,restrict=on,guestfwd=tcp:${HTTP_HOST}:80-cmd:nc 127.0.0.1 ${port}`,
      `bootfile=http://${HTTP_HOST}/boot.ipxe,model=virtio-net-pci`,
    ].join(',');
    const boot = await bootToReady({
      media: ['-boot', 'n'],
      nic: ['-nic', nic],
      serialLog: join(base(), 'http-serial.log'),
      memoryMiB: 2048,
      deadlineSeconds: 600,
      marks: { kernel: /Linux version \d/, squashfs: /loop0: detected capacity/ },
    });
    t.deepEqual(
      boot.readyLines,
      [`hvnode: ready ${VERSION} pxe`],
      'exactly one ready line on the serial port',
    );
    t.regex(
      boot.log,
      new RegExp(
        `Command line: .*root=live:http://${HTTP_HOST}/squashfs\\.img rd\\.live\\.image ip=dhcp rd\\.neednet=1`,
      ),
    );
    // livenet fetches the base; the hvnode-live module then the layer list and the top layer
    t.deepEqual(requests, [
      'GET /boot.ipxe',
      'GET /vmlinuz0',
      'GET /initrd0.img',
      'GET /squashfs.img',
      'GET /layers',
      'GET /top.img',
    ]);
    t.log(
      `boot to ready (iPXE + HTTP, livenet): ${boot.seconds} s; kernel at ${boot.marks.kernel ?? '?'} s, squashfs fetched and mounted at ${boot.marks.squashfs ?? '?'} s`,
    );
  },
);
