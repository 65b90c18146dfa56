// `hvnode-node upload`: the node's persisted configuration (/config, read through the config
// store: the paths its `files` list names and their stored copies), with the NodeConfig in
// /etc/hvnode/node-config.json when the node has one, packed as an upload archive with the
// node's X25519 public key (made into /config when the node has none) and posted to the config
// server's upload area. An admin approves it for the node's MAC; the node's private key never
// leaves it.

import { createPublicKey } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, posix } from 'node:path';
import { dataError, HvError } from '../../common/index.ts';
import { generateNodeKey, type OverlayInput, packUploadArchive } from '../bundle/index.ts';
import { openStore } from '../store/index.ts';
import { answerMessage, fetchUrl } from './http.ts';
import { NODE_KEY_PATH } from './run.ts';

export const NODE_CONFIG_PATH = '/etc/hvnode/node-config.json';

export interface Captured {
  config: unknown;
  overlay: OverlayInput[];
  nodeKeyPem: string;
  /** Node paths of the persisted entries taken. */
  paths: string[];
}

/** The node key (private, PEM) from the store, made and stored first when missing. */
export async function ensureNodeKey(configRoot: string, log: (l: string) => void): Promise<string> {
  const store = openStore(configRoot);
  const file = store.storedPath(NODE_KEY_PATH);
  try {
    return readFileSync(file, 'utf8');
  } catch {
    const key = generateNodeKey();
    await store.storeFiles([{ path: NODE_KEY_PATH, content: key.privateKeyPem, mode: 0o600 }]);
    log(`made this node's key: ${configRoot}${NODE_KEY_PATH}`);
    return key.privateKeyPem;
  }
}

/** One stored entry (and what a stored folder holds) as overlay entries. */
function entriesOf(stored: string, path: string, out: OverlayInput[]): void {
  const st = lstatSync(stored);
  const rel = path.replace(/^\/+/, '');
  if (st.isSymbolicLink()) {
    const target = readlinkSync(stored);
    // an archive holds relative links only: /usr/share/zoneinfo/UTC from etc/ is ../usr/share/zoneinfo/UTC
    out.push({
      path: rel,
      target: target.startsWith('/') ? posix.relative(posix.dirname(path), target) : target,
    });
  } else if (st.isDirectory()) {
    out.push({ path: rel, type: 'dir', mode: st.mode & 0o777 });
    for (const name of readdirSync(stored).sort()) entriesOf(join(stored, name), posix.join(path, name), out);
  } else if (st.isFile()) out.push({ path: rel, data: readFileSync(stored), mode: st.mode & 0o777 });
  else throw dataError(`${stored} is not a file, folder or link`, 'hvnode-node upload', 'unpersist it first');
}

/** The node's persisted configuration as an upload (nothing is sent). */
export async function captureConfig(
  configRoot: string,
  root: string,
  log: (l: string) => void,
): Promise<Captured> {
  mkdirSync(configRoot, { recursive: true, mode: 0o755 });
  const privatePem = await ensureNodeKey(configRoot, log);
  const store = openStore(configRoot);
  const paths = store.listFiles().filter((p) => p !== NODE_KEY_PATH);
  const overlay: OverlayInput[] = [];
  for (const p of paths) {
    try {
      entriesOf(store.storedPath(p), p, overlay);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        log(`${p} is listed in ${configRoot}/files but not stored: left out`);
      else throw err;
    }
  }
  // the private key, also inside a persisted /etc/hvnode: never in the upload
  const cleaned = overlay.filter((e) => `/${e.path}` !== NODE_KEY_PATH);
  let config: unknown = {};
  try {
    config = JSON.parse(readFileSync(join(root, NODE_CONFIG_PATH), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw dataError(`${join(root, NODE_CONFIG_PATH)}: ${(err as Error).message}`, 'hvnode-node upload');
  }
  const nodeKeyPem = createPublicKey(privatePem).export({ format: 'pem', type: 'spki' }).toString();
  return { config, overlay: cleaned, nodeKeyPem, paths };
}

export interface UploadResult {
  id: string;
  state: string;
  entries: number;
  bytes: number;
}

/** POST SERVER/v1/uploads?mac=MAC with the captured configuration. */
export async function uploadConfig(o: {
  server: string;
  mac: string;
  configRoot: string;
  root: string;
  insecure: boolean;
  log: (l: string) => void;
}): Promise<UploadResult> {
  const where = 'hvnode-node upload';
  const c = await captureConfig(o.configRoot, o.root, o.log);
  const tar = await packUploadArchive({ config: c.config, overlay: c.overlay, nodeKeyPem: c.nodeKeyPem });
  const url = `${o.server}/v1/uploads?mac=${encodeURIComponent(o.mac)}`;
  let res: Awaited<ReturnType<typeof fetchUrl>>;
  try {
    res = await fetchUrl(url, {
      method: 'POST',
      body: tar,
      headers: { 'Content-Type': 'application/x-tar' },
      tls: o.insecure ? 'insecure' : 'verify',
      timeoutMs: 60_000,
      maxBytes: 1024 * 1024,
    });
  } catch (err) {
    const m = (err as Error).message;
    throw new HvError(`cannot send the upload: ${m}`, {
      where,
      hint: /certificate/i.test(m)
        ? "the server's certificate is not trusted here: give --insecure to send anyway (the upload holds this node's settings)"
        : 'check --server URL (or config_server=) and that the config server runs',
    });
  }
  if (res.status !== 202 && res.status !== 200 && res.status !== 201)
    throw new HvError(`the config server refused the upload: HTTP ${res.status}: ${answerMessage(res)}`, {
      where,
    });
  const answer = JSON.parse(res.text()) as { id: string; state: string };
  return { id: answer.id, state: answer.state, entries: c.overlay.length, bytes: tar.length };
}
