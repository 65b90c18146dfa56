// The blacklist minimizer: rule files in, a minimized tree and a removal report out.

export type { ElfDeps } from './elf.ts';
export { readElfDeps } from './elf.ts';
export type { Glob } from './glob.ts';
export { compileGlob } from './glob.ts';
export { encodeIcuData, type IcuData, type IcuItem, readIcuData } from './icu.ts';
export type { GroupResult, MinimizeOptions, MinimizeReport, Refusal, RuleResult } from './minimize.ts';
export {
  DEFAULT_RULES_DIR,
  defaultRuleFiles,
  formatGroups,
  formatReport,
  loadRules,
  MinimizeError,
  minimize,
  treeBytes,
} from './minimize.ts';
export type { Directive, Rule } from './rules.ts';
export { DIRECTIVES, parseRules } from './rules.ts';
