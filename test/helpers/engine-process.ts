// The engine stand-in as a process of its own, for tests that need it inside a network namespace
// (a server in the test's process cannot listen there): `ip netns exec NS tsx
// test/helpers/engine-process.ts HOST PORT DIR`. It makes a CA with a certificate for HOST in
// DIR, listens on HOST:PORT, keeps DIR/state.json up to date (url, CA fingerprint, commands,
// registrations), prints one line "ready URL" and runs until SIGTERM.

import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeEngineCa, startEngine } from '../stand-ins/engine.ts';

const [host = '127.0.0.1', port = '0', dir = '.'] = process.argv.slice(2);
const ca = await makeEngineCa(dir, 'hvnode-e2e-engine-ca', host);
const engine = await startEngine({ ca, host, port: Number(port) });
let last = '';
const save = () => {
  const text = JSON.stringify({
    url: engine.url,
    caSha256: ca.caSha256,
    commands: engine.commands,
    registrations: engine.registrations,
  });
  if (text === last) return;
  writeFileSync(join(dir, 'state.json.new'), text);
  // a reader never sees half a file
  renameSync(join(dir, 'state.json.new'), join(dir, 'state.json'));
  last = text;
};
save();
const timer = setInterval(save, 200);
process.stdout.write(`ready ${engine.url}\n`);
process.on('SIGTERM', () => {
  clearInterval(timer);
  save();
  void engine.close().then(() => process.exit(0));
});
