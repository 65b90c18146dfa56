// The `stateless` and `upload` commands of hvnode-node (their table entries; cli.ts lists them).

import {
  type Command,
  dataError,
  ExitCode,
  HvError,
  normalizeMac,
  runtimeVersion,
  STD_OPTIONS,
} from '../../common/index.ts';
import { type CmdlineResult, cmdlineFromOption, requireValidArgs } from '../config/index.ts';
import { bootMode } from '../ready.ts';
import { readRelease } from '../release.ts';
import { backoffFromEnv, realClock } from './backoff.ts';
import { configServerUrl, nodeMac } from './discover.ts';
import {
  isStatelessBoot,
  liveActions,
  STATELESS_ENVIRONMENT_HELP,
  sayEverywhere,
  statelessPathsFromEnv,
} from './index.ts';
import { dryRun, runStateless } from './run.ts';
import { uploadConfig } from './upload.ts';

/** The arguments these commands read: a malformed one stops them (exit 65) before anything else. */
const READ_ARGS = [
  'BOOTIF',
  'stateless',
  'ovirt_stateless',
  'config_server',
  'config_key',
  'hostname',
  'management_server',
  'managment_server',
  'ovirt_managment_server',
  'management_port',
  'management_server_fingerprint',
];

function cmdlineOf(given: unknown, where: string): CmdlineResult {
  const result = cmdlineFromOption(given, where);
  requireValidArgs(result, { where, names: READ_ARGS });
  return result;
}

function noPositionals(positionals: string[], where: string): void {
  if (positionals.length > 0)
    throw dataError(
      `unexpected argument "${positionals[0]}"`,
      where,
      'give the command line with --cmdline STRING',
    );
}

export const statelessCommand: Command = {
  name: 'stateless',
  summary: "fetch, verify and apply this node's configuration bundle, then register with the engine",
  args: [],
  examples: [
    'hvnode-node stateless --dry-run',
    "hvnode-node stateless --cmdline 'stateless BOOTIF=01-52-54-00-12-34-56 config_server=10.0.0.1:8443 config_key=sha256:…'",
  ],
  exitStatus: [
    [0, 'the bundle is applied (and the node registered), or this is not a stateless boot'],
    [1, '--dry-run: the server, the bundle or the engine cannot be reached'],
    [65, 'a malformed argument, or (--dry-run) a bundle that is refused'],
  ],
  help: `Usage: hvnode-node stateless [--cmdline STRING] [-n|--dry-run]

Run at boot by hvnode-stateless.service when the command line has "stateless" (or a live boot
has config_server=). The node's MAC comes from BOOTIF (else the NIC with the default route), the
config server from config_server= (a URL, or HOST[:PORT] for https://HOST:PORT), else from the
DNS SRV record _hvnode-config._tcp.<search domain>; the bundle's signature must verify with
config_key= (else a key of /etc/hvnode/config-keys, built into the image).

Then: GET SERVER/v1/bundles/MAC, verify the signature, decrypt (with /config or the image's
/etc/hvnode/node-key.pem), validate, write the settings autoinstall would persist into the
running system (network first: networkd reloads, so a static address takes effect), set the
host name, lay the bundle's overlay over /, and register with the engine (management_server=,
or the bundle's engine) by oVirt's host-register protocol. Each step is reported to
SERVER/v1/nodes/MAC/status. At the end: "hvnode: ready VERSION stateless" on every console.

It never gives up: on any failure it prints "hvnode: stateless: waiting: REASON (retry in N s)"
on every console, reports it, and retries with exponential backoff and jitter (at most 5 minutes
apart). The bundle's TLS certificate is not checked: its signature is what is trusted.

  --cmdline STRING  the kernel command line to read (default: /proc/cmdline)
  -n, --dry-run     fetch and verify the bundle, print what would be written, laid over and
                    registered; write and report nothing

${STATELESS_ENVIRONMENT_HELP}`,
  options: { cmdline: { type: 'string' }, 'dry-run': STD_OPTIONS['dry-run'] },
  run: async ({ values, positionals }) => {
    const where = 'hvnode-node stateless';
    noPositionals(positionals, where);
    const cmdline = cmdlineOf(values.cmdline, where);
    const paths = statelessPathsFromEnv();
    if (values['dry-run'] === true) {
      for (const l of await dryRun({ cmdline, ...paths })) process.stdout.write(`${l}\n`);
      return ExitCode.ok;
    }
    if (!isStatelessBoot(cmdline, bootMode(cmdline) !== 'installed')) {
      process.stdout.write(
        'hvnode-node stateless: not a stateless boot (no "stateless", no config_server=): nothing to do\n',
      );
      return ExitCode.ok;
    }
    const say = sayEverywhere(paths.consoles);
    const live = liveActions(paths.root);
    await runStateless({
      cmdline,
      ...paths,
      ...(live ? { live } : {}),
      backoff: backoffFromEnv(),
      clock: realClock,
      random: Math.random,
      say,
      log: (l) => process.stdout.write(`${l}\n`),
      version: readRelease().version ?? runtimeVersion(),
    });
    return ExitCode.ok;
  },
};

export const uploadCommand: Command = {
  name: 'upload',
  summary: "send this node's persisted configuration (/config) to the config server for approval",
  args: [],
  examples: ['hvnode-node upload --server https://10.0.0.1:8443 --insecure', 'hvnode-node upload --json'],
  exitStatus: [
    [0, 'uploaded: the id is printed'],
    [1, 'the server cannot be reached or refused the upload'],
    [65, 'a malformed option or argument, or a persisted file that cannot be packed'],
  ],
  help: `Usage: hvnode-node upload [--server URL] [--mac MAC] [--insecure] [--cmdline STRING] [--json]

Packs what this node keeps in /config (the paths /config/files lists and their stored copies),
its /etc/hvnode/node-config.json if it has one, and its X25519 public key (the key is made into
/config/etc/hvnode/node-key.pem first when the node has none; the private key is never sent),
and posts it to SERVER/v1/uploads. An admin reviews and approves it for this MAC; the node
then gets it as its signed (and, with --encrypt, encrypted) bundle at every stateless boot.

  --server URL      the config server (default: config_server= of the command line, else the
                    DNS SRV record _hvnode-config._tcp.<search domain>)
  --mac MAC         this node's MAC (default: BOOTIF, else the NIC with the default route)
  --insecure        do not check the server's TLS certificate (a self-signed server); the
                    upload holds this node's settings, password hashes included
  --cmdline STRING  the kernel command line to read (default: /proc/cmdline)
  --json            print {"id", "state", "mac", "entries", "bytes"}

${STATELESS_ENVIRONMENT_HELP}`,
  options: {
    server: { type: 'string' },
    mac: { type: 'string' },
    insecure: { type: 'boolean' },
    cmdline: { type: 'string' },
    json: STD_OPTIONS.json,
  },
  run: async ({ values, positionals }) => {
    const where = 'hvnode-node upload';
    noPositionals(positionals, where);
    const given = typeof values.server === 'string' ? values.server : undefined;
    if (given !== undefined && !/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(given))
      throw dataError(
        `--server ${JSON.stringify(given)}: not an http(s) URL`,
        where,
        'e.g. --server https://10.0.0.1:8443',
      );
    const macGiven = typeof values.mac === 'string' ? normalizeMac(values.mac, `${where}: --mac`) : undefined;
    const paths = statelessPathsFromEnv();
    const needCmdline = given === undefined || macGiven === undefined;
    const config = needCmdline ? cmdlineOf(values.cmdline, where).config : {};
    const failed = (what: string) => (err: Error) => {
      throw new HvError(`${what}: ${err.message}`, {
        where,
        exitCode: ExitCode.dataError,
        hint: 'give it with --server URL / --mac MAC',
      });
    };
    const server =
      given?.replace(/\/+$/, '') ??
      (await configServerUrl(config, paths.discover).catch(failed('no config server')));
    const mac =
      macGiven ??
      (await Promise.resolve()
        .then(() => nodeMac(config, paths.discover))
        .catch(failed('no MAC')));
    const r = await uploadConfig({
      server,
      mac,
      configRoot: paths.configRoot,
      root: paths.root,
      insecure: values.insecure === true,
      log: (l) => process.stderr.write(`${where}: ${l}\n`),
    });
    if (values.json === true) process.stdout.write(`${JSON.stringify({ ...r, mac })}\n`);
    else
      process.stdout.write(
        `uploaded ${r.id} (${r.entries} entries, ${r.bytes} bytes) for ${mac} to ${server}: ${r.state}\n` +
          `an admin approves it with: hvnode-config-server admin upload approve ${r.id} --mac ${mac} [--encrypt]\n`,
      );
    return ExitCode.ok;
  },
};
