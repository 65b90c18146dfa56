// The parsed form of a (flattened or %include-ing) kickstart. Every item keeps the file and
// line it came from, so later stages can point the user at the kickstart line that caused them.

export interface SourcePos {
  file: string;
  line: number;
}

/** A command line such as `bootloader --timeout=1 --append="quiet"`. */
export interface KsCommand extends SourcePos {
  name: string;
  /** Long options without the leading dashes; a flag without value is `true`. Repeated options keep the last value. */
  options: Record<string, string | true>;
  /** Arguments that are not options, in order. */
  positional: string[];
  /** Whether the builder acts on this command (false: kept and listed by `ks check --verbose`). */
  actedOn: boolean;
}

export interface KsRepo extends SourcePos {
  name: string;
  baseurl?: string;
  mirrorlist?: string;
  options: Record<string, string | true>;
}

export interface KsPackageItem extends SourcePos {
  /** Package name or glob, group `@name`, environment `@^name`; without the leading `-` for exclusions. */
  name: string;
  kind: 'package' | 'group' | 'environment';
  /** True when the name contains glob characters (`*`, `?`, `[`). */
  glob: boolean;
}

export interface KsPackages extends SourcePos {
  /** Section options: excludedocs, nobase, nocore, ignoremissing, instLangs, default, ... */
  options: Record<string, string | true>;
  include: KsPackageItem[];
  exclude: KsPackageItem[];
}

export interface KsScript extends SourcePos {
  kind: 'pre' | 'post';
  nochroot: boolean;
  /** Interpreter path; `/bin/sh` when not given. */
  interpreter: string;
  erroronfail: boolean;
  log?: string;
  body: string;
}

export interface Kickstart {
  commands: KsCommand[];
  repos: KsRepo[];
  /** Absent when the kickstart has no %packages section. Several sections are merged in order. */
  packages?: KsPackages;
  scripts: KsScript[];
  /** Every file read, the top file first (for cache keys and messages). */
  files: string[];
}
