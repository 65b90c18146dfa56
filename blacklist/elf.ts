// Just enough of ELF64 little-endian to know what a binary needs at run time: DT_NEEDED,
// DT_RUNPATH/DT_RPATH (from the dynamic section found through PT_DYNAMIC, its strings found
// through DT_STRTAB mapped by the PT_LOAD segments) and the PT_INTERP loader; and where a dynamic
// symbol's bytes are (ICU's data package, see icu.ts). Reads a few small pieces of the file
// instead of the whole file: a libLLVM is 100 MiB.

import fs from 'node:fs';

export interface ElfDeps {
  needed: string[];
  /** DT_RUNPATH, or DT_RPATH when there is no RUNPATH (the loader ignores RPATH then). */
  searchPath: string[];
  interpreter?: string;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

/** The run-time needs of an ELF executable or shared object; undefined for anything else. */
export function readElfDeps(file: string): ElfDeps | undefined {
  return withFile(file, parse);
}

/** Reads a file through `fn`; undefined when it cannot be opened or is truncated or odd. */
function withFile<T>(file: string, fn: (fd: number) => T | undefined): T | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    return fn(fd);
  } catch {
    // a truncated or odd file is not one we can reason about
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function read(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = fs.readSync(fd, buf, 0, length, offset);
  return n === length ? buf : buf.subarray(0, n);
}

function parse(fd: number): ElfDeps | undefined {
  const magic = read(fd, 0, 4);
  if (magic.length < 4 || magic.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const h = read(fd, 0, 64);
  // ELFCLASS64, ELFDATA2LSB; e_type EXEC or DYN (relocatable objects such as kernel modules need nothing)
  if (h.length < 64 || h[4] !== 2 || h[5] !== 1) return undefined;
  const type = h.readUInt16LE(16);
  if (type !== 2 && type !== 3) return undefined;
  const phoff = Number(h.readBigUInt64LE(32));
  const phentsize = h.readUInt16LE(54);
  const phnum = h.readUInt16LE(56);
  if (phentsize < 56 || phnum === 0) return { needed: [], searchPath: [] };
  const ph = read(fd, phoff, phentsize * phnum);

  const loads: { vaddr: number; offset: number; filesz: number }[] = [];
  let dynamic: { offset: number; filesz: number } | undefined;
  let interp: { offset: number; filesz: number } | undefined;
  for (let i = 0; i < phnum && (i + 1) * phentsize <= ph.length; i++) {
    const o = i * phentsize;
    const ptype = ph.readUInt32LE(o);
    const offset = Number(ph.readBigUInt64LE(o + 8));
    const vaddr = Number(ph.readBigUInt64LE(o + 16));
    const filesz = Number(ph.readBigUInt64LE(o + 32));
    if (ptype === PT_LOAD) loads.push({ vaddr, offset, filesz });
    else if (ptype === PT_DYNAMIC) dynamic = { offset, filesz };
    else if (ptype === PT_INTERP) interp = { offset, filesz };
  }
  const result: ElfDeps = { needed: [], searchPath: [] };
  if (interp) result.interpreter = cString(read(fd, interp.offset, Math.min(interp.filesz, 4096)), 0);
  if (!dynamic) return result;

  const dyn = read(fd, dynamic.offset, Math.min(dynamic.filesz, 1 << 20));
  const neededOffsets: number[] = [];
  let strtab: number | undefined;
  let rpath: number | undefined;
  let runpath: number | undefined;
  for (let o = 0; o + 16 <= dyn.length; o += 16) {
    const tag = Number(dyn.readBigInt64LE(o));
    if (tag === DT_NULL) break;
    const val = Number(dyn.readBigUInt64LE(o + 8));
    if (tag === DT_NEEDED) neededOffsets.push(val);
    else if (tag === DT_STRTAB) strtab = val;
    else if (tag === DT_RPATH) rpath = val;
    else if (tag === DT_RUNPATH) runpath = val;
  }
  if (strtab === undefined) return result;
  const seg = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
  const strOffset = seg ? strtab - seg.vaddr + seg.offset : strtab;
  const str = (off: number) => readString(fd, strOffset + off);
  result.needed = neededOffsets.map(str);
  const sp = runpath ?? rpath;
  if (sp !== undefined) result.searchPath = str(sp).split(':').filter(Boolean);
  return result;
}

function cString(buf: Buffer, start: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 ? buf.length : end);
}

function readString(fd: number, offset: number): string {
  let size = 256;
  for (;;) {
    const buf = read(fd, offset, size);
    const end = buf.indexOf(0);
    if (end >= 0 || buf.length < size || size >= 65536) return cString(buf, 0);
    size *= 4;
  }
}

/** Where a dynamic symbol's bytes are in the file. */
export interface ElfSymbol {
  offset: number;
  size: number;
}

const SHT_DYNSYM = 11;

/**
 * The file offset and size of a defined symbol of `.dynsym` (found through the section headers:
 * the symbol's section maps its address to the file), or undefined when the file has no such
 * symbol or is not a 64-bit little-endian ELF file.
 */
export function readElfSymbol(file: string, name: string): ElfSymbol | undefined {
  return withFile(file, (fd) => findSymbol(fd, name));
}

function findSymbol(fd: number, name: string): ElfSymbol | undefined {
  const h = read(fd, 0, 64);
  if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined;
  const shoff = Number(h.readBigUInt64LE(40));
  const shentsize = h.readUInt16LE(58);
  const shnum = h.readUInt16LE(60);
  if (shentsize < 64 || shnum === 0 || shnum > 4096) return undefined;
  const sh = read(fd, shoff, shentsize * shnum);
  const section = (i: number) => {
    const o = i * shentsize;
    if (o + 64 > sh.length) return undefined;
    return {
      type: sh.readUInt32LE(o + 4),
      addr: Number(sh.readBigUInt64LE(o + 16)),
      offset: Number(sh.readBigUInt64LE(o + 24)),
      size: Number(sh.readBigUInt64LE(o + 32)),
      link: sh.readUInt32LE(o + 40),
    };
  };
  for (let i = 0; i < shnum; i++) {
    const dynsym = section(i);
    if (dynsym?.type !== SHT_DYNSYM) continue;
    const strtab = section(dynsym.link);
    if (!strtab || dynsym.size > 64 << 20 || strtab.size > 64 << 20) return undefined;
    const syms = read(fd, dynsym.offset, dynsym.size);
    const strs = read(fd, strtab.offset, strtab.size);
    for (let o = 24; o + 24 <= syms.length; o += 24) {
      const shndx = syms.readUInt16LE(o + 6);
      if (shndx === 0 || shndx >= 0xff00 || cString(strs, syms.readUInt32LE(o)) !== name) continue;
      const home = section(shndx);
      const value = Number(syms.readBigUInt64LE(o + 8));
      const size = Number(syms.readBigUInt64LE(o + 16));
      if (!home || value < home.addr || value + size > home.addr + home.size) return undefined;
      return { offset: home.offset + (value - home.addr), size };
    }
  }
  return undefined;
}
