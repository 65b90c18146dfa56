// Debian copyright-format short license names → SPDX license expressions.
// Debian names are case-insensitive and use `+` for "or later" and `or`/`and`/`,` as operators.

const IDS: Record<string, string> = {
  'gpl-1': 'GPL-1.0-only',
  'gpl-1+': 'GPL-1.0-or-later',
  'gpl-2': 'GPL-2.0-only',
  'gpl-2+': 'GPL-2.0-or-later',
  'gpl-3': 'GPL-3.0-only',
  'gpl-3+': 'GPL-3.0-or-later',
  'lgpl-2': 'LGPL-2.0-only',
  'lgpl-2+': 'LGPL-2.0-or-later',
  'lgpl-2.1': 'LGPL-2.1-only',
  'lgpl-2.1+': 'LGPL-2.1-or-later',
  'lgpl-3': 'LGPL-3.0-only',
  'lgpl-3+': 'LGPL-3.0-or-later',
  'agpl-3': 'AGPL-3.0-only',
  'agpl-3+': 'AGPL-3.0-or-later',
  'gfdl-1.2': 'GFDL-1.2-only',
  'gfdl-1.2+': 'GFDL-1.2-or-later',
  'gfdl-1.3': 'GFDL-1.3-only',
  'gfdl-1.3+': 'GFDL-1.3-or-later',
  'apache-2.0': 'Apache-2.0',
  'apache-2': 'Apache-2.0',
  artistic: 'Artistic-1.0-Perl',
  'artistic-1.0': 'Artistic-1.0',
  'artistic-2.0': 'Artistic-2.0',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  expat: 'MIT',
  mit: 'MIT',
  isc: 'ISC',
  zlib: 'Zlib',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
  'psf-2': 'PSF-2.0',
  'python-2.0': 'Python-2.0',
  cc0: 'CC0-1.0',
  'cc0-1.0': 'CC0-1.0',
  'cc-by-3.0': 'CC-BY-3.0',
  'cc-by-4.0': 'CC-BY-4.0',
  'cc-by-sa-3.0': 'CC-BY-SA-3.0',
  'cc-by-sa-4.0': 'CC-BY-SA-4.0',
  openssl: 'OpenSSL',
  x11: 'X11',
  curl: 'curl',
  ftl: 'FTL',
  'bsl-1.0': 'BSL-1.0',
  'epl-1.0': 'EPL-1.0',
  'epl-2.0': 'EPL-2.0',
  'ofl-1.1': 'OFL-1.1',
  'unicode-dfs-2016': 'Unicode-DFS-2016',
  'bzip2-1.0.6': 'bzip2-1.0.6',
  sleepycat: 'Sleepycat',
  wtfpl: 'WTFPL',
  libpng: 'Libpng',
  'libpng-2.0': 'libpng-2.0',
  ijg: 'IJG',
  unlicense: 'Unlicense',
  'gpl-2.0-only': 'GPL-2.0-only',
  'gpl-2.0-or-later': 'GPL-2.0-or-later',
  'gpl-3.0-only': 'GPL-3.0-only',
  'gpl-3.0-or-later': 'GPL-3.0-or-later',
  'lgpl-2.1-only': 'LGPL-2.1-only',
  'lgpl-2.1-or-later': 'LGPL-2.1-or-later',
};

const EXCEPTIONS: Record<string, string> = {
  autoconf: 'Autoconf-exception-2.0',
  'autoconf-2.0': 'Autoconf-exception-2.0',
  'autoconf-3.0': 'Autoconf-exception-3.0',
  bison: 'Bison-exception-2.2',
  'bison-2.2': 'Bison-exception-2.2',
  classpath: 'Classpath-exception-2.0',
  'gcc-exception-3.1': 'GCC-exception-3.1',
  'gcc-3.1': 'GCC-exception-3.1',
  libtool: 'Libtool-exception',
  font: 'Font-exception-2.0',
  'linux-syscall-note': 'Linux-syscall-note',
};

// SPDX ids map to themselves, so an expression already in SPDX form (as manifest-license.txt and
// manifest.json hold it) converts again without change.
for (const table of [IDS, EXCEPTIONS]) for (const id of Object.values(table)) table[id.toLowerCase()] = id;

export const NOASSERTION = 'NOASSERTION';

/** A single license (maybe with an exception) as SPDX names it, or undefined when unknown. */
function spdxTerm(term: string): string | undefined {
  const m = /^(.+?)\s+with\s+(.+?)(?:\s+exception)?$/i.exec(term);
  if (!m) return IDS[term.toLowerCase()];
  const base = IDS[(m[1] ?? '').toLowerCase()];
  const exc = EXCEPTIONS[(m[2] ?? '').toLowerCase()];
  return base && exc ? `${base} WITH ${exc}` : undefined;
}

/** A `LicenseRef-` id: SPDX allows only letters, digits, `.` and `-` after the prefix. */
export function licenseRef(term: string): string {
  return `LicenseRef-${term.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '')}`;
}

interface Parsed {
  terms: string[];
  ops: Array<'AND' | 'OR'>;
}

function parse(expr: string): Parsed {
  const parts = expr.trim().split(/\s+(or|and)\s+|\s*,\s*/i);
  // split() with a capture group interleaves the operators (undefined for a comma)
  const terms: string[] = [];
  const ops: Array<'AND' | 'OR'> = [];
  for (let i = 0; i < parts.length; i++) {
    if (i % 2 === 0) terms.push(parts[i] ?? '');
    else ops.push(parts[i]?.toLowerCase() === 'or' ? 'OR' : 'AND');
  }
  return { terms: terms.filter((t) => t !== ''), ops };
}

function join(p: Parsed, render: (term: string) => string): string {
  // rpm License tags group with parentheses: `(GPL-2.0-or-later OR MIT) AND BSD-3-Clause`
  const grouped = (t: string) => {
    const m = /^(\(*)(.*?)(\)*)$/.exec(t) as RegExpExecArray;
    return `${m[1]}${render(m[2] as string)}${m[3]}`;
  };
  return p.terms.map((t, i) => (i === 0 ? grouped(t) : `${p.ops[i - 1] ?? 'AND'} ${grouped(t)}`)).join(' ');
}

/**
 * The form `manifest-license.txt` shows: SPDX ids where the Debian name is known, the Debian
 * name otherwise (`GPL-2+ or Artistic` → `GPL-2.0-or-later OR Artistic-1.0-Perl`).
 */
export function readableLicense(debian: string): string {
  return join(parse(debian), (t) => spdxTerm(t) ?? t);
}

/** A valid SPDX expression: unknown names become `LicenseRef-<name>`. */
export function spdxLicense(debian: string): { expression: string; refs: string[] } {
  const refs: string[] = [];
  const expression = join(parse(debian), (t) => {
    const id = spdxTerm(t);
    if (id) return id;
    const ref = licenseRef(t);
    refs.push(ref);
    return ref;
  });
  return { expression, refs };
}
