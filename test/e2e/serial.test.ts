// The ready line is found in a serial log the way a person reads it.

import test from 'ava';
import { kernelStalls, readyLinesOf } from '../helpers/qemu.ts';

test('ready lines behind systemd status escapes and prompts', (t) => {
  const log =
    '\x1b[K[  OK  ] Finished e2scrub\r\r\n\x1b[Khvnode: ready 0.1.0 live\r\n[  OK  ] Started getty\r\n';
  t.deepEqual(readyLinesOf(log), ['hvnode: ready 0.1.0 live']);
  t.deepEqual(readyLinesOf('node1 login: hvnode: ready 0.1.0 live\r\n'), [], 'not a line of its own');
  t.deepEqual(readyLinesOf('hvnode: ready 1 live\nhvnode: ready 1 live\n').length, 2);
});

test("a guest kernel's longest silence and the stalls it reports are named", (t) => {
  const log = [
    '[   27.900000] parport0: PC-style at 0x378, irq 7 [PCSPP,TRISTATE]\r',
    '[   52.500000] watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [modprobe:649]\r',
    '[   52.500000] RIP: 0010:clear_page_erms+0x7/0x10\r',
    '[   55.300000] rcu: INFO: rcu_preempt self-detected stall on CPU\r',
    '\x1b[Khvnode: ready 0.1.0 live\r',
  ].join('\n');
  t.is(
    kernelStalls(log),
    'kernel log silent 24.6 s from 27.9 s at most; soft lockup 26 s in modprobe; 1 RCU stall report',
  );
  t.is(
    kernelStalls('[    3.500000] Run /init\n[    4.000000] systemd[1]: started\nhvnode: ready 0.1.0 live\n'),
    'kernel log silent 0.5 s from 3.5 s at most',
  );
});
