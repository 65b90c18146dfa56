// The host-register client (node-runtime/engine) against the engine stand-in: the CA check by
// fingerprint in each accepted notation, trust on first use and a CA that changes afterwards,
// the engine's refusals passed on with its message.

import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parseFingerprint, registerWithEngine } from '../../node-runtime/engine/register.ts';
import { type EngineCa, makeEngineCa, startEngine } from '../stand-ins/engine.ts';

let pair: Promise<{ ca: EngineCa; other: EngineCa; dir: string }> | undefined;
const cas = () =>
  (pair ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvnode-engine-ca-'));
    return {
      ca: await makeEngineCa(join(dir, 'a')),
      other: await makeEngineCa(join(dir, 'b'), 'other-ca'),
      dir,
    };
  })());
test.after.always(async () => {
  if (pair) rmSync((await pair).dir, { recursive: true, force: true });
});

function dirs(t: import('ava').ExecutionContext) {
  const d = mkdtempSync(join(tmpdir(), 'hvnode-engine-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  mkdirSync(join(d, 'root'));
  return { configRoot: join(d, 'config'), root: join(d, 'root'), log: (l: string) => lines.push(l) };
}
const lines: string[] = [];
const NODE = {
  name: 'n1.example.com',
  address: '192.0.2.10',
  uniqueId: '4c4c4544-0042-3510-8052-b4c04f4e4d31',
};

test('the CA fingerprint in every notation: SHA-256 colon or plain hex, upper or lower case, SHA-1', async (t) => {
  const { ca, other } = await cas();
  const engine = await startEngine({ ca, otherCa: other });
  t.teardown(() => engine.close());
  const der = new X509Certificate(ca.caPem).raw;
  const sha1 = createHash('sha1').update(der).digest('hex');
  for (const fp of [
    ca.caSha256,
    ca.caSha256.replace(/:/g, '').toLowerCase(),
    `sha256:${ca.caSha256.replace(/:/g, '')}`,
    sha1,
  ]) {
    const r = await registerWithEngine(
      { server: '127.0.0.1', port: engine.port, fingerprint: fp },
      NODE,
      dirs(t),
    );
    t.false(r.already, fp);
    t.false(r.trustedOnFirstUse);
  }
  t.is(engine.registrations.length, 4);
  t.deepEqual(engine.registrations[0], {
    ...NODE,
    sshUser: 'root',
    sshPort: '22',
    status: 'PendingApproval',
  });
  t.deepEqual(parseFingerprint('AB:'.repeat(19) + 'AB'), { algorithm: 'sha1', hex: 'ab'.repeat(20) });
  t.throws(() => parseFingerprint('AB:CD'), { message: /not a SHA-1 or SHA-256 fingerprint/ });
});

test('trust on first use: recorded in /config and said; a different CA later is refused (no registration)', async (t) => {
  const { ca, other } = await cas();
  const engine = await startEngine({ ca, otherCa: other });
  t.teardown(() => engine.close());
  const d = dirs(t);
  const said: string[] = [];
  const first = await registerWithEngine({ server: '127.0.0.1', port: engine.port }, NODE, {
    ...d,
    log: (l) => said.push(l),
  });
  t.true(first.trustedOnFirstUse);
  t.true(said.some((l) => l.includes(`trusting its CA on first use: SHA-256 ${ca.caSha256}`)));
  t.is(readFileSync(join(d.configRoot, 'etc/hvnode/engine-ca.pem'), 'utf8').trim(), ca.caPem.trim());
  // another machine's record is not this one's: it registers, checking the recorded CA
  engine.mode = 'wrong-ca';
  const err = await t.throwsAsync(
    registerWithEngine(
      { server: '127.0.0.1', port: engine.port },
      { ...NODE, uniqueId: '00000000-0000-4000-8000-000000000001' },
      d,
    ),
  );
  t.regex(err?.message ?? '', /is not the one trusted before/);
  t.is(engine.registrations.length, 1);
});

test("the engine's errors are passed on with its message; a CA signed by another CA fails TLS after the pin", async (t) => {
  const { ca, other } = await cas();
  const engine = await startEngine({ ca, otherCa: other });
  t.teardown(() => engine.close());
  engine.mode = 'error500';
  await t.throwsAsync(registerWithEngine({ server: '127.0.0.1', port: engine.port }, NODE, dirs(t)), {
    message: /^engine 127\.0\.0\.1: get-version: HTTP 500: Internal Server Error/,
  });
  // the other CA's fingerprint given and served: the check passes, but the engine's certificate
  // is not signed by it, so get-ssh-trust fails its TLS check and nothing is registered
  engine.mode = 'wrong-ca';
  await t.throwsAsync(
    registerWithEngine(
      { server: '127.0.0.1', port: engine.port, fingerprint: other.caSha256 },
      NODE,
      dirs(t),
    ),
    { message: /get-ssh-trust: .*(certificate|verify)/i },
  );
  t.is(engine.registrations.length, 0);
});
