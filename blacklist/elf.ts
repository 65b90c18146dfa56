// Just enough of ELF64 little-endian to know what a binary needs at run time: DT_NEEDED,
// DT_RUNPATH/DT_RPATH (from the dynamic section found through PT_DYNAMIC, its strings found
// through DT_STRTAB mapped by the PT_LOAD segments) and the PT_INTERP loader. Reads a few small
// pieces of the file instead of the whole file: a libLLVM is 100 MiB.

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
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    return parse(fd);
  } catch {
    // a truncated or odd file is not a consumer we can reason about
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
