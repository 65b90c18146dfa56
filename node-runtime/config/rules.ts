// Rules on a NodeConfig that its JSON Schema cannot state: they span fields (a VLAN on a bond
// slave, a bond's primary that is not one of its slaves) or know a driver's vocabulary (bonding
// options). validateNodeConfig applies them after the schema, the command-line parser to the
// arguments they come from, and the settings stage takes its networkd translation from here; so
// that whatever autoinstall is given is refused before it writes anything, and by the same rule.

import { isIPv4 } from 'node:net';
import type { NodeConfig } from './schema.ts';

/** A broken rule: where in the NodeConfig (a JSON pointer), what, and what to do. */
export interface RuleProblem {
  path: string;
  message: string;
  hint?: string;
}

/** A bonding option's value → networkd's, or undefined; `expected` says what it takes. */
type BondValue = ((v: string) => string | undefined) & { expected: string };

function bondValue(expected: string, convert: (v: string) => string | undefined): BondValue {
  return Object.assign(convert, { expected });
}

const int = (min: number, max: number, unit = ''): BondValue =>
  bondValue(`an integer from ${min} to ${max}`, (v) =>
    /^\d{1,10}$/.test(v) && Number(v) >= min && Number(v) <= max ? `${Number(v)}${unit}` : undefined,
  );

/** Kernel names or their numbers (mode=4 is 802.3ad) → networkd's name. */
const oneOf = (...names: string[]): BondValue =>
  bondValue(`one of ${names.join(', ')} (or 0-${names.length - 1})`, (v) =>
    names.includes(v) ? v : /^\d$/.test(v) ? names[Number(v)] : undefined,
  );

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/**
 * Bonding driver options (as modprobe and oVirt's bond= take them) → networkd's [Bond] keys.
 * primary= is a slave's PrimarySlave= and arp_ip_target= accumulates; both handled apart.
 */
const BOND_OPTIONS: Record<string, [key: string, value: BondValue]> = {
  mode: [
    'Mode',
    oneOf('balance-rr', 'active-backup', 'balance-xor', 'broadcast', '802.3ad', 'balance-tlb', 'balance-alb'),
  ],
  miimon: ['MIIMonitorSec', int(0, 2 ** 31 - 1, 'ms')],
  updelay: ['UpDelaySec', int(0, 2 ** 31 - 1, 'ms')],
  downdelay: ['DownDelaySec', int(0, 2 ** 31 - 1, 'ms')],
  arp_interval: ['ARPIntervalSec', int(0, 2 ** 31 - 1, 'ms')],
  lp_interval: ['LearnPacketIntervalSec', int(1, 2 ** 31 - 1, 's')],
  lacp_rate: ['LACPTransmitRate', oneOf('slow', 'fast')],
  xmit_hash_policy: ['TransmitHashPolicy', oneOf('layer2', 'layer3+4', 'layer2+3', 'encap2+3', 'encap3+4')],
  ad_select: ['AdSelect', oneOf('stable', 'bandwidth', 'count')],
  arp_validate: ['ARPValidate', oneOf('none', 'active', 'backup', 'all')],
  arp_all_targets: ['ARPAllTargets', oneOf('any', 'all')],
  primary_reselect: ['PrimaryReselectPolicy', oneOf('always', 'better', 'failure')],
  fail_over_mac: ['FailOverMACPolicy', oneOf('none', 'active', 'follow')],
  min_links: ['MinLinks', int(0, 2 ** 31 - 1)],
  num_grat_arp: ['GratuitousARP', int(0, 255)],
  num_unsol_na: ['GratuitousARP', int(0, 255)],
  resend_igmp: ['ResendIGMP', int(0, 255)],
  packets_per_slave: ['PacketsPerSlave', int(0, 65535)],
  all_slaves_active: [
    'AllSlavesActive',
    bondValue('0 or 1', (v) => (v === '0' ? 'no' : v === '1' ? 'yes' : undefined)),
  ],
  ad_actor_sys_prio: ['AdActorSystemPriority', int(1, 65535)],
  ad_user_port_key: ['AdUserPortKey', int(0, 1023)],
  ad_actor_system: [
    'AdActorSystem',
    bondValue('a MAC address', (v) => (MAC.test(v) ? v.toLowerCase() : undefined)),
  ],
};

export const BOND_OPTION_NAMES = [...Object.keys(BOND_OPTIONS), 'arp_ip_target', 'primary'].sort();

type Bond = NonNullable<NonNullable<NodeConfig['network']>['bond']>;

/** A bond in systemd-networkd's terms: its [Bond] lines, its primary slave, and what is wrong. */
export interface NetworkdBond {
  lines: string[];
  primary?: string;
  /** One per option that cannot be used, as `OPTION=VALUE: what is wrong` (with `hint`); a slave named as the bond too. */
  problems: { option: string; message: string; hint: string }[];
}

/** Reads a bond's options (OPTION=VALUE, as the schema admits them) the way networkd takes them. */
export function networkdBond(bond: Bond): NetworkdBond {
  const set = new Map<string, string>();
  const targets: string[] = [];
  const problems: NetworkdBond['problems'] = [];
  let primary: string | undefined;
  const hint = 'see the bonding driver documentation';
  if (bond.slaves.includes(bond.name))
    problems.push({
      option: bond.name,
      message: 'the bond cannot be one of its own slaves',
      hint: 'name the bond apart from its NICs, e.g. bond0',
    });
  for (const option of bond.options ?? []) {
    const eq = option.indexOf('=');
    const key = option.slice(0, eq);
    const value = option.slice(eq + 1);
    const bad = (expected: string) => problems.push({ option, message: `expected ${expected}`, hint });
    if (key === 'primary') {
      if (bond.slaves.includes(value)) primary = value;
      else bad(`one of the slaves (${bond.slaves.join(', ')})`);
    } else if (key === 'arp_ip_target') {
      if (isIPv4(value)) targets.push(value);
      else bad('an IPv4 address');
    } else if (Object.hasOwn(BOND_OPTIONS, key)) {
      const [networkdKey, convert] = BOND_OPTIONS[key] as [string, BondValue];
      const converted = convert(value);
      if (converted === undefined) bad(convert.expected);
      else set.set(networkdKey, converted);
    } else {
      problems.push({
        option,
        message: `the bonding option "${key}" is not supported`,
        hint: `supported: ${BOND_OPTION_NAMES.join(', ')}`,
      });
    }
  }
  if (targets.length > 0) set.set('ARPIPTargets', targets.join(' '));
  return { lines: [...set].map(([k, v]) => `${k}=${v}`), primary, problems };
}

/** A VLAN whose parent is one of the bond's slaves: the slave carries no traffic of its own. */
export function vlanOnBondSlave(network: NodeConfig['network']): RuleProblem | undefined {
  const vlan = network?.vlan;
  const bond = network?.bond;
  if (!vlan?.nic || !bond?.slaves.includes(vlan.nic)) return undefined;
  return {
    path: '/network/vlan/nic',
    message: `${vlan.nic} is a slave of the bond ${bond.name}`,
    hint: `put the VLAN on the bond: vlan=${vlan.id}:${bond.name}`,
  };
}

/** Every rule of this file that `config` (schema-valid) breaks. */
export function ruleProblems(config: NodeConfig): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const bond = config.network?.bond;
  if (bond) {
    for (const p of networkdBond(bond).problems)
      problems.push({
        path:
          p.option === bond.name
            ? `/network/bond/slaves/${bond.slaves.indexOf(bond.name)}`
            : `/network/bond/options/${bond.options?.indexOf(p.option) ?? 0}`,
        message: `${p.option}: ${p.message}`,
        hint: p.hint,
      });
  }
  const vlan = vlanOnBondSlave(config.network);
  if (vlan) problems.push(vlan);
  return problems;
}
