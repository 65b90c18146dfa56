// Parser for blacklist rule files (`*.blacklist`): one directive per line, `#` comments. Like the
// kickstart parser it never throws on bad input: every problem goes to a Report with file:line.

import { Report } from '../common/index.ts';
import { compileGlob, type Glob } from './glob.ts';

export const DIRECTIVES = [
  'drop',
  'keep',
  'droppkg',
  'keeppkg',
  'module-drop',
  'module-keep',
  'firmware-drop',
  'firmware-keep',
  'icu-drop',
  'icu-keep',
] as const;
export type Directive = (typeof DIRECTIVES)[number];

export interface Rule {
  directive: Directive;
  /** The glob as written. */
  pattern: string;
  glob: Glob;
  /** Remove even what a kept file or module still needs. */
  force: boolean;
  file: string;
  line: number;
  /** `file:line`, how reports name the rule. */
  id: string;
  /** The `## heading` above the rule (its group in the size table), or the file's name. */
  group: string;
}

export function isDrop(d: Directive): boolean {
  return d === 'drop' || d === 'droppkg' || d === 'module-drop' || d === 'firmware-drop' || d === 'icu-drop';
}

export function parseRules(text: string, file: string): { rules: Rule[]; report: Report } {
  const rules: Rule[] = [];
  const report = new Report();
  const lines = text.split('\n');
  let group = file.replace(/^.*\//, '');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const at = { file, line };
    // a heading's first line names the group; the lines after it continue the heading
    const heading = /^##\s+([^:.(]+)/.exec(lines[i] as string);
    if (heading && !(lines[i - 1] ?? '').startsWith('##')) group = (heading[1] as string).trim();
    const content = (lines[i] as string).replace(/(^|\s)#.*$/, '').trim();
    if (content === '') continue;
    const words = content.split(/\s+/);
    const [word, pattern, ...rest] = words as [string, ...string[]];
    if (!(DIRECTIVES as readonly string[]).includes(word)) {
      report.error(`unknown directive "${word}"`, {
        ...at,
        hint: `directives: ${DIRECTIVES.join(', ')}`,
      });
      continue;
    }
    const directive = word as Directive;
    if (pattern === undefined) {
      report.error(`"${directive}" needs a ${directive.endsWith('pkg') ? 'package name' : 'path'} glob`, at);
      continue;
    }
    let force = false;
    // nothing refuses an ICU item's removal: force would mean nothing there
    if (rest.length === 1 && rest[0] === 'force' && isDrop(directive) && directive !== 'icu-drop')
      force = true;
    else if (rest.length > 0) {
      const hint =
        rest[0] === 'force'
          ? '"force" is only allowed on drop rules that a dependency check can refuse (not icu-drop)'
          : 'one glob per line; a glob cannot contain spaces';
      report.error(`extra words after "${directive} ${pattern}": ${rest.join(' ')}`, { ...at, hint });
      continue;
    }
    if ((directive === 'drop' || directive === 'keep') && !pattern.startsWith('/')) {
      report.error(`"${directive}" needs an absolute path glob, got "${pattern}"`, at);
      continue;
    }
    if (directive.endsWith('pkg') && pattern.includes('/')) {
      report.error(`"${directive}" takes a package name glob, got "${pattern}"`, at);
      continue;
    }
    // module, firmware and ICU globs are relative to their tree; a leading slash is a slip, not a mistake
    const relative =
      directive.startsWith('module-') || directive.startsWith('firmware-') || directive.startsWith('icu-');
    const source = relative
      ? pattern.replace(/^\/+/, '').replace(/\/+$/, '')
      : pattern.replace(/(.)\/+$/, '$1');
    rules.push({
      directive,
      pattern,
      glob: compileGlob(source),
      force,
      file,
      line,
      id: `${file}:${line}`,
      group,
    });
  }
  return { rules, report };
}
