// Shell-style globs over image paths, compiled once to a RegExp. `*` and `?` stay inside one
// path segment, `**` crosses segments (and `/**/` also matches a single `/`), `[...]` is a
// character class (`[!...]` or `[^...]` negates), a backslash makes the next character literal.

export interface Glob {
  source: string;
  re: RegExp;
  /** The literal text before the first wildcard: lets a tree walk skip subtrees the glob cannot reach. */
  prefix: string;
  /** How many `/`-separated segments a match has; Infinity when the glob holds `**`. */
  segments: number;
}

const SPECIAL = /[.*+?^${}()|[\]\\/]/g;

export function escapeRegExp(s: string): string {
  return s.replace(SPECIAL, '\\$&');
}

export function compileGlob(source: string): Glob {
  let re = '';
  let prefix = '';
  let literal = true;
  for (let i = 0; i < source.length; i++) {
    const c = source[i] as string;
    if (c === '*') {
      literal = false;
      if (source[i + 1] === '*') {
        i++;
        // `/**/` may stand for no directory at all: `/usr/**/x.pyc` also matches `/usr/x.pyc`
        if (re.endsWith('\\/') && source[i + 1] === '/') {
          re = `${re.slice(0, -2)}(?:\\/.*)?`;
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') {
      literal = false;
      re += '[^/]';
    } else if (c === '[') {
      const end = classEnd(source, i);
      if (end < 0) {
        // an unclosed `[` is just a character, as in fnmatch
        re += '\\[';
        if (literal) prefix += c;
        continue;
      }
      literal = false;
      let body = source.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^/' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < source.length) {
      i++;
      re += escapeRegExp(source[i] as string);
      if (literal) prefix += source[i];
    } else {
      re += escapeRegExp(c);
      if (literal) prefix += c;
    }
  }
  return {
    source,
    re: new RegExp(`^${re}$`),
    prefix,
    segments: source.includes('**') ? Number.POSITIVE_INFINITY : source.split('/').filter(Boolean).length,
  };
}

/** Index of the `]` that closes the class opened at `start`, or -1. A `]` first in the class is literal. */
function classEnd(s: string, start: number): number {
  let i = start + 1;
  if (s[i] === '!' || s[i] === '^') i++;
  if (s[i] === ']') i++;
  for (; i < s.length; i++) if (s[i] === ']') return i;
  return -1;
}

/**
 * Whether some path below `dir` (an absolute path without trailing slash, '' for the root) at
 * `depth` segments could match: the literal prefix must agree with the directory and the glob
 * must be deep enough.
 */
export function mayMatchBelow(g: Glob, dir: string, depth: number): boolean {
  if (g.segments < depth) return false;
  const d = `${dir}/`;
  return d.length >= g.prefix.length ? d.startsWith(g.prefix) : g.prefix.startsWith(d);
}
