// The ready line is found in a serial log the way a person reads it.

import test from 'ava';
import { readyLinesOf } from '../helpers/qemu.ts';

test('ready lines behind systemd status escapes and prompts', (t) => {
  const log =
    '\x1b[K[  OK  ] Finished e2scrub\r\r\n\x1b[Khvnode: ready 0.1.0 live\r\n[  OK  ] Started getty\r\n';
  t.deepEqual(readyLinesOf(log), ['hvnode: ready 0.1.0 live']);
  t.deepEqual(readyLinesOf('node1 login: hvnode: ready 0.1.0 live\r\n'), [], 'not a line of its own');
  t.deepEqual(readyLinesOf('hvnode: ready 1 live\nhvnode: ready 1 live\n').length, 2);
});
