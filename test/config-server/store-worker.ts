// A second (and third) server process for store-concurrency.test.ts: acts on a data directory
// at the same time as another one. Usage: store-worker.ts MODE DIR START_AT_MS [ARGS...]
// Prints one JSON line with what it did.

import { openDirStore } from '../../config-server/store/dir-store.ts';

const [mode, dir, startAt, ...rest] = process.argv.slice(2) as [string, string, string, ...string[]];
const store = openDirStore(dir);
// start together: both processes are loaded before either begins
while (Date.now() < Number(startAt)) await new Promise((r) => setTimeout(r, 2));

const MAC = '52:54:00:00:00:01';

if (mode === 'decide') {
  // try to decide every upload given (in the order given); report which decisions were ours
  const won: string[] = [];
  const refused: string[] = [];
  for (const id of rest) {
    try {
      await store.uploads.decide(id, 'approved', `by ${process.pid}`);
      won.push(id);
    } catch (err) {
      if (!/already/.test((err as Error).message)) throw err;
      refused.push(id);
    }
  }
  console.log(JSON.stringify({ pid: process.pid, won, refused }));
} else if (mode === 'bundles') {
  // put bundles whose every byte is `fill` (size fill*1000+7) and read whatever is there
  const fills = rest.map(Number);
  let puts = 0;
  let reads = 0;
  const bad: string[] = [];
  for (let i = 0; i < 60; i++) {
    const fill = fills[i % fills.length] as number;
    await store.bundles.put(MAC, Buffer.alloc(fill * 1000 + 7, fill), { encrypted: false });
    puts++;
    for (let j = 0; j < 3; j++) {
      const got = await store.bundles.get(MAC);
      if (!got) continue;
      reads++;
      const f = got.data[0] as number;
      const whole = got.data.length === f * 1000 + 7 && got.data.equals(Buffer.alloc(got.data.length, f));
      const matches = got.record.size === got.data.length;
      if (!whole || !matches) bad.push(`fill ${f} length ${got.data.length} record ${got.record.size}`);
    }
  }
  console.log(JSON.stringify({ pid: process.pid, puts, reads, bad }));
} else throw new Error(`unknown mode ${mode}`);
