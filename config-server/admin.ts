// `hvnode-config-server admin`: the admin command table. One implementation per action, each
// calling the AdminApi: local over a data directory (--data DIR) or remote over HTTP
// (--url URL --token T, given by the caller as `remote`). Arguments are checked before the API
// is reached; files (NodeConfig YAML, overlay folder, node key) are read here, on the admin's
// machine, so both implementations get the same data.

import { lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import {
  type Command,
  checkOutFile,
  dataError,
  ExitCode,
  normalizeMac,
  notBuiltYet,
  type Options,
  type Parsed,
  readTextInput,
  STDIO,
} from '../common/index.ts';
import type { AdminApi, OverlayFile, ProfileChange } from './admin-api.ts';
import { LocalAdminApi } from './admin-local.ts';
import { checkGroupName, checkImageVersion, openDirStore } from './store/dir-store.ts';
import type { UploadState } from './store/types.ts';

const PROG = 'hvnode-config-server admin';

/** Where the admin commands act: options every admin command takes. */
const CONNECTION = {
  data: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies Options;

const CONNECTION_HELP = `Where (before or after the command):
  --data DIR       the server's data directory (local; created for commands that write)
  --url URL        a running server (remote), with --token T (or HVNODE_ADMIN_TOKEN)
  --json           print the result as JSON (errors too)`;

export interface AdminCommandOptions {
  /** The HTTP client implementation of AdminApi (--url); absent: --url is not built yet. */
  remote?: (url: string, token: string) => AdminApi;
}

type Values = Parsed['values'];

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The AdminApi the options select. `write`: the command changes something (DIR may be created). */
function connect(values: Values, o: AdminCommandOptions, write: boolean, where: string): AdminApi {
  const data = str(values, 'data');
  const url = str(values, 'url');
  if (data !== undefined && url !== undefined)
    throw dataError(
      '--data and --url both given',
      where,
      'act on a data directory or on a running server, not both',
    );
  if (url !== undefined) {
    const token = str(values, 'token') ?? process.env.HVNODE_ADMIN_TOKEN;
    if (!token) throw dataError('--url needs --token T (or HVNODE_ADMIN_TOKEN)', where);
    if (!o.remote) throw notBuiltYet(`${where} --url`);
    return o.remote(url, token);
  }
  if (data === undefined || data === '')
    throw dataError('missing --data DIR (or --url URL --token T)', where, `see "${PROG} --help"`);
  return new LocalAdminApi(openDirStore(data, { create: write }), { who: 'cli' });
}

function print(values: Values, json: unknown, text: () => string): number {
  if (values.json === true) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else {
    const t = text();
    if (t !== '') process.stdout.write(t.endsWith('\n') ? t : `${t}\n`);
  }
  return ExitCode.ok;
}

function table(header: string[], rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function words(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(/\s+/).filter(Boolean);
}

interface Leaf {
  name: string;
  summary: string;
  usage: string;
  args?: string[];
  options?: Options;
  examples: string[];
  exitStatus?: [number, string][];
  /** Changes something (the data directory may be created; nothing is written before the checks). */
  write?: boolean;
  run(api: AdminApi, p: Parsed, where: string): Promise<number>;
}

function leaf(group: string | undefined, l: Leaf, o: AdminCommandOptions): Command {
  const where = [PROG, group, l.name].filter(Boolean).join(' ');
  return {
    name: l.name,
    summary: l.summary,
    help: `Usage: ${where} ${l.usage}\n\n${CONNECTION_HELP}`,
    args: l.args ?? [],
    options: { ...CONNECTION, ...(l.options ?? {}) },
    examples: l.examples,
    ...(l.exitStatus ? { exitStatus: l.exitStatus } : {}),
    run: async (p) => l.run(connect(p.values, o, l.write === true, where), p, where),
  };
}

// ---- reading the admin's files

function parseYamlConfig(file: string, where: string): unknown {
  const text = readTextInput(file, where, 'NodeConfig YAML file');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e?.pos?.[0] !== undefined ? lineCounter.linePos(e.pos[0]) : undefined;
    throw dataError(
      `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${e?.message.split('\n')[0]}`,
      where,
    );
  }
  const config = doc.toJS() as unknown;
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw dataError(`${file}: not a NodeConfig (a YAML mapping, e.g. "hostname: node1.example.com")`, where);
  return config;
}

/** The tree below dir as overlay entries: folders, regular files, relative symbolic links. */
export function readOverlayDir(dir: string, where: string): OverlayFile[] {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch {
    throw dataError(`--overlay ${dir}: no such folder`, where);
  }
  if (!st.isDirectory()) throw dataError(`--overlay ${dir}: not a folder`, where);
  const out: OverlayFile[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      const path = relative(dir, p);
      const mode = lstatSync(p).mode & 0o7777;
      if (e.isDirectory()) {
        out.push({ path, type: 'dir', mode });
        walk(p);
      } else if (e.isFile()) out.push({ path, type: 'file', data: readFileSync(p), mode });
      else if (e.isSymbolicLink()) out.push({ path, type: 'symlink', target: readlinkSync(p) });
      else
        throw dataError(
          `--overlay ${dir}: ${path} is not a regular file, folder or symbolic link`,
          where,
          'an overlay holds files, folders and links only',
        );
    }
  };
  walk(dir);
  return out;
}

function readNodeKey(file: string, where: string): string {
  const pem = readTextInput(file, where, 'node public key (PEM)');
  if (!/-----BEGIN PUBLIC KEY-----/.test(pem))
    throw dataError(
      `--encrypt-to ${file}: not a PEM public key`,
      where,
      'give the node key the node uploaded (node-key.pem)',
    );
  return pem;
}

const UPLOAD_STATES: UploadState[] = ['pending', 'approved', 'rejected'];

function positiveInt(text: string | undefined, option: string, where: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw dataError(`${option} ${JSON.stringify(text)} is not a positive whole number`, where);
  return Number(text);
}

// ---- the table

function imageCommands(o: AdminCommandOptions): Command[] {
  return [
    leaf(
      'image',
      {
        name: 'add',
        summary: 'add a live ISO (iso-to-pxeboot into the data directory)',
        usage: 'ISO',
        args: ['ISO'],
        write: true,
        examples: [`${PROG} --data /srv/hvnode image add dist/hvnode-0.1.0.iso`],
        exitStatus: [
          [0, 'added'],
          [1, 'a tool failed (nothing is added)'],
          [2, 'xorriso or pxelinux is missing'],
          [65, 'not a live ISO, or its version is in the store already'],
        ],
        run: async (api, { values, positionals }) => {
          const r = await api.images.add(positionals[0] as string);
          return print(values, r, () => `added image ${r.version} from ${r.isoName}`);
        },
      },
      o,
    ),
    leaf(
      'image',
      {
        name: 'list',
        summary: 'list the images',
        usage: '',
        examples: [`${PROG} --data /srv/hvnode image list`],
        run: async (api, { values }) => {
          const list = await api.images.list();
          return print(values, list, () =>
            table(
              ['VERSION', 'DEFAULT', 'ISO', 'ADDED', 'USED BY'],
              list.map((i) => [i.version, i.default ? 'yes' : '', i.isoName, i.addedAt, i.usedBy.join(', ')]),
            ),
          );
        },
      },
      o,
    ),
    leaf(
      'image',
      {
        name: 'rm',
        summary: 'remove an image no node, group or default uses',
        usage: 'VERSION',
        args: ['VERSION'],
        write: true,
        examples: [`${PROG} --data /srv/hvnode image rm 0.1.0`],
        run: async (api, { values, positionals }, where) => {
          const v = checkImageVersion(positionals[0] as string, where);
          await api.images.rm(v);
          return print(values, { removed: v }, () => `removed image ${v}`);
        },
      },
      o,
    ),
    leaf(
      'image',
      {
        name: 'default',
        summary: 'make an image the default (what unknown MACs boot)',
        usage: 'VERSION',
        args: ['VERSION'],
        write: true,
        examples: [`${PROG} --data /srv/hvnode image default 0.2.0`],
        run: async (api, { values, positionals }, where) => {
          const v = checkImageVersion(positionals[0] as string, where);
          await api.images.setDefault(v);
          return print(values, { default: v }, () => `default image: ${v}`);
        },
      },
      o,
    ),
  ];
}

function profileChange(values: Values, where: string): ProfileChange {
  const image = str(values, 'image');
  const group = str(values, 'group');
  return {
    ...(image !== undefined ? { image: checkImageVersion(image, where) } : {}),
    ...(group !== undefined ? { group: checkGroupName(group, where) } : {}),
    ...(values.args !== undefined ? { args: words(str(values, 'args')) } : {}),
  };
}

function nodeCommands(o: AdminCommandOptions): Command[] {
  return [
    leaf(
      'node',
      {
        name: 'set',
        summary: "set a MAC's boot profile (image, extra kernel arguments, group)",
        usage:
          'MAC [--image VERSION] [--args "ARG ..."] [--group NAME]\n\nOptions left out keep their value; --args "" clears the arguments.',
        args: ['MAC'],
        options: { image: { type: 'string' }, args: { type: 'string' }, group: { type: 'string' } },
        write: true,
        examples: [
          `${PROG} --data /srv/hvnode node set 52:54:00:12:34:56 --image 0.2.0 --args "hostname=node1"`,
          `${PROG} --data /srv/hvnode node set 52-54-00-12-34-57 --group rack1`,
        ],
        run: async (api, { values, positionals }, where) => {
          const mac = normalizeMac(positionals[0] as string, `${where}: MAC`);
          const change = profileChange(values, where);
          if (Object.keys(change).length === 0)
            throw dataError('nothing to set', where, 'give --image, --args or --group');
          const p = await api.nodes.set(mac, change);
          return print(values, { mac, profile: p }, () => `${mac}: ${describeProfile(p)}`);
        },
      },
      o,
    ),
    leaf(
      'node',
      {
        name: 'unset',
        summary: "remove a MAC's own profile (it boots its group's or the default)",
        usage: 'MAC',
        args: ['MAC'],
        write: true,
        examples: [`${PROG} --data /srv/hvnode node unset 52:54:00:12:34:56`],
        run: async (api, { values, positionals }, where) => {
          const mac = normalizeMac(positionals[0] as string, `${where}: MAC`);
          const removed = await api.nodes.unset(mac);
          return print(values, { mac, removed }, () =>
            removed ? `${mac}: profile removed` : `${mac} had no profile`,
          );
        },
      },
      o,
    ),
    leaf(
      'node',
      {
        name: 'list',
        summary: 'list the nodes known by profile, bundle or status, with their last status',
        usage: '',
        examples: [`${PROG} --data /srv/hvnode node list --json`],
        run: async (api, { values }) => {
          const list = await api.nodes.list();
          return print(values, list, () =>
            table(
              ['MAC', 'IMAGE', 'FROM', 'BUNDLE', 'STATUS'],
              list.map((n) => [
                n.mac,
                n.effective.image ?? '-',
                n.effective.source,
                n.bundle ? (n.bundle.encrypted ? 'encrypted' : 'yes') : '',
                n.status ? `${n.status.step} ${n.status.state} ${n.status.at}` : '',
              ]),
            ),
          );
        },
      },
      o,
    ),
    leaf(
      'node',
      {
        name: 'show',
        summary: 'what a MAC boots, its bundle and its last status',
        usage: 'MAC',
        args: ['MAC'],
        examples: [`${PROG} --data /srv/hvnode node show 52:54:00:12:34:56`],
        run: async (api, { values, positionals }, where) => {
          const n = await api.nodes.show(normalizeMac(positionals[0] as string, `${where}: MAC`));
          return print(values, n, () =>
            [
              `mac:     ${n.mac}`,
              `boots:   ${n.effective.image ?? '(no image: no default set)'} (${n.effective.source} profile${n.effective.group ? `, group ${n.effective.group}` : ''})`,
              `args:    ${n.effective.args.join(' ')}`,
              `bundle:  ${n.bundle ? `${n.bundle.etag} ${n.bundle.size} bytes${n.bundle.encrypted ? ' encrypted' : ''} ${n.bundle.updatedAt}` : 'none'}`,
              `status:  ${n.status ? `${n.status.step} ${n.status.state}: ${n.status.message} (${n.status.address}, ${n.status.at})` : 'none reported'}`,
            ].join('\n'),
          );
        },
      },
      o,
    ),
  ];
}

function describeProfile(p: { image?: string; args: string[]; group?: string }): string {
  return [
    `image ${p.image ?? '(group or default)'}`,
    p.group ? `group ${p.group}` : undefined,
    p.args.length > 0 ? `args "${p.args.join(' ')}"` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
}

function groupCommands(o: AdminCommandOptions): Command[] {
  return [
    leaf(
      'group',
      {
        name: 'set',
        summary: "set a group's boot profile (nodes join with node set MAC --group NAME)",
        usage: 'NAME [--image VERSION] [--args "ARG ..."]',
        args: ['NAME'],
        options: { image: { type: 'string' }, args: { type: 'string' } },
        write: true,
        examples: [`${PROG} --data /srv/hvnode group set rack1 --image 0.2.0 --args "console=ttyS1,115200"`],
        run: async (api, { values, positionals }, where) => {
          const name = checkGroupName(positionals[0] as string, where);
          const p = await api.groups.set(name, profileChange(values, where));
          return print(values, { name, profile: p }, () => `group ${name}: ${describeProfile(p)}`);
        },
      },
      o,
    ),
    leaf(
      'group',
      {
        name: 'list',
        summary: 'list the groups and their members',
        usage: '',
        examples: [`${PROG} --data /srv/hvnode group list`],
        run: async (api, { values }) => {
          const list = await api.groups.list();
          return print(values, list, () =>
            table(
              ['GROUP', 'IMAGE', 'ARGS', 'MEMBERS'],
              list.map((g) => [
                g.name,
                g.profile.image ?? '(default)',
                g.profile.args.join(' '),
                String(g.members.length),
              ]),
            ),
          );
        },
      },
      o,
    ),
  ];
}

function bundleCommands(o: AdminCommandOptions): Command[] {
  return [
    leaf(
      'bundle',
      {
        name: 'put',
        summary: "sign a NodeConfig (and an overlay) and publish it as a MAC's bundle",
        usage:
          "MAC FILE.yaml [--overlay DIR] [--encrypt-to NODEKEY.pem]\n\n  --overlay DIR           files laid over the node's root (DIR/etc/motd → /etc/motd)\n  --encrypt-to FILE       encrypt to the node's X25519 public key (PEM)",
        args: ['MAC', 'FILE'],
        options: { overlay: { type: 'string' }, 'encrypt-to': { type: 'string' } },
        write: true,
        examples: [
          `${PROG} --data /srv/hvnode bundle put 52:54:00:12:34:56 node1.yaml`,
          `${PROG} --data /srv/hvnode bundle put 52:54:00:12:34:56 node1.yaml --overlay node1/ --encrypt-to node1-key.pem`,
        ],
        run: async (api, { values, positionals }, where) => {
          const mac = normalizeMac(positionals[0] as string, `${where}: MAC`);
          const config = parseYamlConfig(positionals[1] as string, where);
          const overlayDir = str(values, 'overlay');
          const encryptTo = str(values, 'encrypt-to');
          const r = await api.bundles.put(mac, {
            config,
            ...(overlayDir !== undefined ? { overlay: readOverlayDir(overlayDir, where) } : {}),
            ...(encryptTo !== undefined ? { encryptToPem: readNodeKey(encryptTo, where) } : {}),
          });
          return print(
            values,
            r,
            () =>
              `published bundle for ${mac}: ${r.size} bytes, ${r.etag}${r.encrypted ? ', encrypted' : ''}`,
          );
        },
      },
      o,
    ),
    leaf(
      'bundle',
      {
        name: 'get',
        summary: "write a MAC's signed bundle to a file",
        usage: 'MAC [--out FILE]   (--out - : standard output, not a terminal)',
        args: ['MAC'],
        options: { out: { type: 'string', short: 'o' } },
        examples: [`${PROG} --data /srv/hvnode bundle get 52:54:00:12:34:56 --out node1.bundle`],
        run: async (api, { values, positionals }, where) => {
          const mac = normalizeMac(positionals[0] as string, `${where}: MAC`);
          const out = str(values, 'out') ?? STDIO;
          if (out === STDIO && process.stdout.isTTY && values.json !== true)
            throw dataError('a bundle is binary: not written to a terminal', where, 'add --out FILE');
          if (out !== STDIO) checkOutFile(out, where);
          const b = await api.bundles.get(mac);
          if (values.json === true)
            return print(values, { ...b.record, data: b.data.toString('base64') }, () => '');
          if (out === STDIO) process.stdout.write(b.data);
          else {
            writeFileSync(out, b.data, { mode: 0o600 });
            process.stderr.write(`wrote ${out} (${b.record.size} bytes, ${b.record.etag})\n`);
          }
          return ExitCode.ok;
        },
      },
      o,
    ),
    leaf(
      'bundle',
      {
        name: 'rm',
        summary: "remove a MAC's bundle",
        usage: 'MAC',
        args: ['MAC'],
        write: true,
        examples: [`${PROG} --data /srv/hvnode bundle rm 52:54:00:12:34:56`],
        run: async (api, { values, positionals }, where) => {
          const mac = normalizeMac(positionals[0] as string, `${where}: MAC`);
          const removed = await api.bundles.rm(mac);
          return print(values, { mac, removed }, () =>
            removed ? `removed the bundle of ${mac}` : `${mac} had no bundle`,
          );
        },
      },
      o,
    ),
    leaf(
      'bundle',
      {
        name: 'list',
        summary: 'list the published bundles',
        usage: '',
        examples: [`${PROG} --data /srv/hvnode bundle list`],
        run: async (api, { values }) => {
          const list = await api.bundles.list();
          return print(values, list, () =>
            table(
              ['MAC', 'SIZE', 'ENCRYPTED', 'UPDATED', 'FROM UPLOAD'],
              list.map((b) => [
                b.mac,
                String(b.size),
                b.encrypted ? 'yes' : 'no',
                b.updatedAt,
                b.fromUpload ?? '',
              ]),
            ),
          );
        },
      },
      o,
    ),
  ];
}

function uploadCommands(o: AdminCommandOptions): Command[] {
  return [
    leaf(
      'upload',
      {
        name: 'list',
        summary: "list nodes' uploads (captured /config, waiting for approval)",
        usage: `[--state ${UPLOAD_STATES.join('|')}]`,
        options: { state: { type: 'string' } },
        examples: [`${PROG} --data /srv/hvnode upload list --state pending`],
        run: async (api, { values }, where) => {
          const state = str(values, 'state');
          if (state !== undefined && !UPLOAD_STATES.includes(state as UploadState))
            throw dataError(
              `--state ${JSON.stringify(state)} is not one of ${UPLOAD_STATES.join(', ')}`,
              where,
            );
          const list = await api.uploads.list(state as UploadState | undefined);
          return print(values, list, () =>
            table(
              ['ID', 'STATE', 'MAC', 'FROM', 'SIZE', 'RECEIVED', 'NOTE'],
              list.map((u) => [u.id, u.state, u.mac, u.address, String(u.size), u.receivedAt, u.note ?? '']),
            ),
          );
        },
      },
      o,
    ),
    leaf(
      'upload',
      {
        name: 'show',
        summary: 'what an upload holds (its NodeConfig and overlay files)',
        usage: 'ID',
        args: ['ID'],
        examples: [`${PROG} --data /srv/hvnode upload show 3q2-7wEAAABkYWJj`],
        run: async (api, { values, positionals }) => {
          const u = await api.uploads.show(positionals[0] as string);
          return print(values, u, () =>
            [
              `upload ${u.record.id}: ${u.record.state}${u.record.note ? ` (${u.record.note})` : ''}`,
              `from ${u.record.address}, says MAC ${u.record.mac}, ${u.record.size} bytes, ${u.record.receivedAt}`,
              `node key: ${u.nodeKey ? 'yes (approve --encrypt possible)' : 'no'}`,
              'config:',
              ...JSON.stringify(u.config, null, 2)
                .split('\n')
                .map((l) => `  ${l}`),
              `overlay: ${u.overlay.length === 0 ? 'none' : ''}`,
              ...u.overlay.map(
                (f) => `  ${f.mode.toString(8).padStart(4, '0')} ${String(f.size).padStart(8)} /${f.path}`,
              ),
            ].join('\n'),
          );
        },
      },
      o,
    ),
    leaf(
      'upload',
      {
        name: 'approve',
        summary: "sign an upload and publish it as a MAC's bundle (once)",
        usage:
          "ID --mac MAC [--encrypt]\n\n  --mac MAC     the MAC to publish it for (the node's claim is not trusted)\n  --encrypt     encrypt to the node key the upload carries",
        args: ['ID'],
        options: { mac: { type: 'string' }, encrypt: { type: 'boolean' } },
        write: true,
        examples: [
          `${PROG} --data /srv/hvnode upload approve 3q2-7wEAAABkYWJj --mac 52:54:00:12:34:56 --encrypt`,
        ],
        run: async (api, { values, positionals }, where) => {
          const macText = str(values, 'mac');
          if (macText === undefined)
            throw dataError('missing --mac MAC', where, 'the MAC to publish the bundle for');
          const mac = normalizeMac(macText, `${where}: --mac`);
          const r = await api.uploads.approve(positionals[0] as string, mac, {
            encrypt: values.encrypt === true,
          });
          return print(
            values,
            r,
            () =>
              `approved upload ${r.upload.id}: published for ${mac}${r.bundle.encrypted ? ' (encrypted)' : ''}`,
          );
        },
      },
      o,
    ),
    leaf(
      'upload',
      {
        name: 'reject',
        summary: 'reject an upload (once), with a reason',
        usage: 'ID --reason "..."',
        args: ['ID'],
        options: { reason: { type: 'string' } },
        write: true,
        examples: [`${PROG} --data /srv/hvnode upload reject 3q2-7wEAAABkYWJj --reason "unknown machine"`],
        run: async (api, { values, positionals }, where) => {
          const reason = str(values, 'reason')?.trim();
          if (!reason)
            throw dataError('missing --reason "..."', where, 'say why (it is kept with the upload)');
          const r = await api.uploads.reject(positionals[0] as string, reason);
          return print(values, r, () => `rejected upload ${r.id}`);
        },
      },
      o,
    ),
  ];
}

function group(name: string, summary: string, commands: Command[]): Command {
  return {
    name,
    summary,
    help: CONNECTION_HELP,
    commands,
    examples: commands.flatMap((c) => c.examples?.slice(0, 1) ?? []),
  };
}

/** `admin` and its table. */
export function adminCommand(o: AdminCommandOptions = {}): Command {
  return {
    name: 'admin',
    summary: 'manage images, boot profiles, bundles and uploads',
    help: `Usage: ${PROG} (--data DIR | --url URL --token T) COMMAND ... [--json]\n\n${CONNECTION_HELP}`,
    examples: [
      `${PROG} --data /srv/hvnode image add dist/hvnode-0.1.0.iso`,
      `${PROG} --data /srv/hvnode node set 52:54:00:12:34:56 --image 0.1.0`,
      `${PROG} --data /srv/hvnode upload approve ID --mac 52:54:00:12:34:56`,
      `${PROG} --data /srv/hvnode key`,
    ],
    commands: [
      group('image', 'add, list, remove live images; set the default', imageCommands(o)),
      group('node', "per-MAC boot profiles and the nodes' status", nodeCommands(o)),
      group('group', 'boot profiles shared by several MACs', groupCommands(o)),
      group('bundle', 'signed per-MAC configuration bundles', bundleCommands(o)),
      group('upload', "nodes' uploaded configurations: approve or reject", uploadCommands(o)),
      leaf(
        undefined,
        {
          name: 'audit',
          summary: 'the audit log (who did what, when, with what result)',
          usage: '[--limit N]',
          options: { limit: { type: 'string' } },
          examples: [`${PROG} --data /srv/hvnode audit --limit 20`],
          run: async (api, { values }, where) => {
            const list = await api.audit.list(positiveInt(str(values, 'limit'), '--limit', where));
            return print(values, list, () =>
              table(
                ['AT', 'WHO', 'ACTION', 'TARGET', 'RESULT', 'DETAIL'],
                list.map((a) => [a.at, a.who, a.action, a.target ?? '', a.result, a.detail ?? '']),
              ),
            );
          },
        },
        o,
      ),
      leaf(
        undefined,
        {
          name: 'key',
          summary: "the server key's fingerprint (the config_key= kernel argument)",
          usage: '',
          write: true,
          examples: [`${PROG} --data /srv/hvnode key`],
          run: async (api, { values }) => {
            const k = await api.key.show();
            return print(values, k, () => k.fingerprint);
          },
        },
        o,
      ),
    ],
  };
}

/** Connection options given before the subcommand (`admin --data DIR image list`) move after it. */
export function adminArgv(argv: string[]): string[] {
  if (argv[0] !== 'admin') return argv;
  const lead: string[] = [];
  let i = 1;
  while (i < argv.length) {
    const a = argv[i] as string;
    const name = /^--([a-z]+)(=|$)/.exec(a)?.[1];
    if (name === undefined || !(name in CONNECTION)) break;
    const takesValue = CONNECTION[name as keyof typeof CONNECTION].type === 'string' && !a.includes('=');
    lead.push(...argv.slice(i, i + (takesValue ? 2 : 1)));
    i += takesValue ? 2 : 1;
  }
  const rest = argv.slice(i);
  // `admin --data DIR` alone, or with --help: keep the group's own help
  if (rest.length === 0 || rest[0]?.startsWith('-')) return ['admin', ...rest];
  return ['admin', ...rest, ...lead];
}
