// License strings of packages → SPDX license expressions.
//
// Input: the short name of a Files paragraph of a Debian machine-readable copyright file
// (`GPL-2+ or Artistic, and MIT`: case-insensitive names, `+` for "or later", `or`/`and`, a comma
// lowering the precedence of the operator after it) or an rpm License tag (SPDX since Fedora 38,
// Callaway names such as `GPLv2+ and ASL 2.0` before, parentheses in both).
//
// Names are checked with spdx-expression-parse (it knows the SPDX license and exception lists)
// and corrected with spdx-correct, but a correction is kept only when it renames and never when it
// guesses: spdx-correct turns `GPL-2+` into GPL-2.0-only, `BSD-4-clause` into BSD-2-Clause and
// `GPL` into GPL-3.0-or-later. So `+` is handled here, and a corrected name must keep the name's
// letters and version numbers. Names SPDX spells differently from Debian are in DEBIAN below.
// A name that still is unknown becomes `LicenseRef-<name>` in the SBOM; a string that is not a
// license expression at all makes the whole expression NOASSERTION.

import spdxCorrect from 'spdx-correct';
import parseSpdx from 'spdx-expression-parse';

export const NOASSERTION = 'NOASSERTION';

/** Debian short names (lower-cased) that are SPDX ids under another name. */
const DEBIAN: Record<string, string> = {
  expat: 'MIT',
  // Debian's `Artistic` is version 1.0 as Perl uses it; spdx-correct would say Artistic-2.0
  artistic: 'Artistic-1.0-Perl',
  cc0: 'CC0-1.0',
};

/** Debian exception names (`GPL-3+ with autoconf exception`, lower-cased) → SPDX exception ids. */
const DEBIAN_EXCEPTIONS: Record<string, string> = {
  autoconf: 'Autoconf-exception-2.0',
  'autoconf-2.0': 'Autoconf-exception-2.0',
  'autoconf-3.0': 'Autoconf-exception-3.0',
  bison: 'Bison-exception-2.2',
  'bison-2.2': 'Bison-exception-2.2',
  classpath: 'Classpath-exception-2.0',
  font: 'Font-exception-2.0',
  'gcc-3.1': 'GCC-exception-3.1',
  'gcc-exception-3.1': 'GCC-exception-3.1',
  libtool: 'Libtool-exception',
  'linux-syscall-note': 'Linux-syscall-note',
};

/** One license: an SPDX id (maybe with an exception), or, when unknown, the name as written. */
interface Leaf {
  id?: string;
  text: string;
}
type Node = Leaf | { op: 'AND' | 'OR'; left: Node; right: Node };

function valid(expression: string): boolean {
  try {
    parseSpdx(expression);
    return true;
  } catch {
    return false;
  }
}

/** What a name says, for comparing a correction with it: letters and version numbers only. */
const key = (name: string) =>
  name
    .toLowerCase()
    .replace(/-only$/, '')
    .replace(/v(?=\d)/g, '')
    .replace(/(\d)(?:\.0)+(?!\d)/g, '$1')
    .replace(/[^a-z0-9]+/g, '');

/** The SPDX id of a license name without `+`, or undefined. */
function licenseId(name: string): string | undefined {
  const debian = DEBIAN[name.toLowerCase()];
  if (debian) return debian;
  // Debian writes BSD-3-clause; spdx-correct would guess BSD-2-Clause for BSD-4-clause
  const spelled = name.replace(/-clause$/i, '-Clause');
  let id: string | undefined;
  if (valid(spelled)) id = spelled;
  else {
    const corrected = spdxCorrect(spelled, { upgrade: false });
    if (corrected && key(corrected) === key(spelled) && valid(corrected)) id = corrected;
  }
  if (id === undefined || /[+:]|-or-later$/.test(id)) return id;
  // GPL-2.0 (deprecated since SPDX 3.0) means GPL-2.0-only
  return valid(`${id}-only`) ? `${id}-only` : id;
}

/** A license name as SPDX names it, with Debian's and SPDX's deprecated `+` made -or-later. */
function licenseName(name: string): string | undefined {
  // any LicenseRef- is valid: no -only, -or-later or + is to be added to one
  if (/^LicenseRef-[A-Za-z0-9.-]+$/.test(name)) return name;
  const plus = name.endsWith('+');
  const id = licenseId(plus ? name.slice(0, -1) : name);
  if (!id || !plus) return id;
  const base = id.replace(/-only$/, '');
  if (valid(`${base}-or-later`)) return `${base}-or-later`;
  return /-or-later$/.test(base) ? base : `${base}+`;
}

function exceptionId(name: string): string | undefined {
  const base = name.replace(/\s+exception$/i, '');
  // SPDX's own id (Linux-syscall-note), or Debian's way of naming it (`LLVM exception`)
  for (const id of [name, `${base}-exception`]) if (valid(`MIT WITH ${id}`)) return id;
  return DEBIAN_EXCEPTIONS[base.toLowerCase()];
}

// A name: up to three words of letters, digits and `. + _ / ~ -` (`Custom-Thing`, `ASL 2.0`,
// `public-domain~md5`); an exception may have a few more words. Anything else is no name.
const WORD = String.raw`[\p{L}\p{N}._+/~-]+`;
const NAME = new RegExp(`^${WORD}(?: ${WORD}){0,2}$`, 'u');
const EXCEPTION = new RegExp(`^${WORD}(?: ${WORD}){0,5}$`, 'u');
// A name with a remark in parentheses and no operator (`BSD (3 clause)`) is one name.
const REMARKED = new RegExp(String.raw`^(?![^]*\b(?:and|or)\b)(?:${WORD}|[ ()])+$`, 'iu');

/** One license term; undefined when it is not a license name at all. */
function leaf(text: string): Leaf | undefined {
  if (text === NOASSERTION || text === 'NONE') return undefined;
  const m = /^(.+?) with (.+)$/i.exec(text);
  if (!(m ? NAME.test(m[1] as string) && EXCEPTION.test(m[2] as string) : NAME.test(text))) return undefined;
  const license = licenseName(m ? (m[1] as string) : text);
  const exception = m ? exceptionId(m[2] as string) : undefined;
  if (!license || (m && !exception)) return { text };
  return { id: exception ? `${license} WITH ${exception}` : license, text };
}

/** Parses a Debian or rpm license string; undefined when it is not a license expression. */
function parse(input: string): Node | undefined {
  const tokens = input
    .trim()
    .split(/\s*([(),])\s*|\s+/)
    .filter((t) => t !== undefined && t !== '');
  let at = 0;
  const peekOp = () => /^(?:and|or)$/i.test(tokens[at] ?? '') && (tokens[at] as string).toUpperCase();
  const join = (op: 'AND' | 'OR', left: Node, right: Node): Node => ({ op, left, right });
  // a comma lowers the precedence of the operator after it (AND when none follows)
  const commas = (): Node | undefined => {
    let left = ors();
    while (left && tokens[at] === ',') {
      at++;
      const op = (peekOp() || 'AND') as 'AND' | 'OR';
      if (peekOp()) at++;
      const right = ors();
      left = right && join(op, left, right);
    }
    return left;
  };
  const chain = (op: 'AND' | 'OR', next: () => Node | undefined) => (): Node | undefined => {
    let left = next();
    while (left && peekOp() === op) {
      at++;
      const right = next();
      left = right && join(op, left, right);
    }
    return left;
  };
  const primary = (): Node | undefined => {
    if (tokens[at] === '(') {
      at++;
      const inner = commas();
      return tokens[at++] === ')' ? inner : undefined;
    }
    const words: string[] = [];
    while (at < tokens.length && !/^[(),]$/.test(tokens[at] as string) && !peekOp())
      words.push(tokens[at++] as string);
    return words.length > 0 ? leaf(words.join(' ')) : undefined;
  };
  const ands = chain('AND', primary);
  const ors = chain('OR', ands);
  const tree = commas();
  if (at === tokens.length && tree) return tree;
  const text = tokens.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')');
  const balanced = !/[()]/.test(text.replace(/\([^()]*\)/g, ''));
  return REMARKED.test(text) && /[()]/.test(text) && balanced ? { text } : undefined;
}

/** Renders a tree; a part joined with the other operator is in parentheses, so none is ambiguous. */
function render(node: Node, name: (l: Leaf) => string): string {
  if (!('op' in node)) return name(node);
  const side = (n: Node) => ('op' in n && n.op !== node.op ? `(${render(n, name)})` : render(n, name));
  return `${side(node.left)} ${node.op} ${side(node.right)}`;
}

/** A `LicenseRef-` id: SPDX allows only letters, digits, `.` and `-` after the prefix. */
export function licenseRef(term: string): string {
  return `LicenseRef-${term.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '')}`;
}

/**
 * The form `manifest-license.txt` and manifest.json show: SPDX ids where the name is known, the
 * name as written otherwise (`GPL-2+ or Artistic` → `GPL-2.0-or-later OR Artistic-1.0-Perl`);
 * the string as it is when it is no license expression. spdxLicense() takes it back unchanged.
 */
export function readableLicense(text: string): string {
  const tree = parse(text);
  return tree ? render(tree, (l) => l.id ?? l.text) : text.trim();
}

/**
 * A valid SPDX expression: unknown names become `LicenseRef-<name>` (returned in refs), and a
 * string that is no license expression (or `NOASSERTION`) becomes NOASSERTION. Several
 * strings (a package's licenses) are joined with AND.
 */
export function spdxLicense(...texts: string[]): { expression: string; refs: string[] } {
  const trees = texts.map(parse);
  if (trees.length === 0 || trees.some((t) => t === undefined)) return { expression: NOASSERTION, refs: [] };
  const tree = (trees as Node[]).reduce((all, t) => ({ op: 'AND', left: all, right: t }));
  const refs = new Set<string>();
  const expression = render(tree, (l) => {
    // a LicenseRef the string names itself (Fedora: LicenseRef-Callaway-MIT) needs defining too
    const ref = l.id ? /^LicenseRef-[A-Za-z0-9.-]+/.exec(l.id)?.[0] : licenseRef(l.text);
    if (ref) refs.add(ref);
    return l.id ?? (ref as string);
  });
  // the renderer writes only what the parser took in; this keeps a slip from reaching an SBOM
  return valid(expression) ? { expression, refs: [...refs] } : { expression: NOASSERTION, refs: [] };
}
