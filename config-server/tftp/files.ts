// What a TFTP request may read: the name cleaned the way tftp-hpa reads it, then the file opened
// only if its *resolved* path is inside the root. Checking the resolved path (not the name) is what
// refuses symlinks that lead out of the root, which node-tftp follows.

import { constants } from 'node:fs';
import { type FileHandle, open, readlink, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode } from './packet.ts';

/** A refusal, sent to the client as an ERROR packet. Messages never name server-side paths. */
export class Refusal {
  constructor(
    readonly code: number,
    readonly message: string,
  ) {}
}

/** Bytes to serve: a file in the root, or a buffer from the resolve hook. */
export interface Source {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * The name relative to the root, or a Refusal. A leading '/' is stripped (PXE ROMs and tftp-hpa
 * clients often send absolute names); '..' segments are refused outright rather than resolved,
 * so no name can even probe what lies outside the root. Backslashes are refused because Windows
 * clients mean them as separators and `..\x` must not become a file named "..\x" on a whim.
 */
export function cleanName(name: string): string | Refusal {
  if (name.includes('\\'))
    return new Refusal(ErrorCode.accessViolation, 'backslashes are not allowed in names');
  if (/[\x00-\x1f\x7f]/.test(name))
    return new Refusal(ErrorCode.accessViolation, 'control characters are not allowed in names');
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return new Refusal(ErrorCode.accessViolation, "'..' is not allowed in names");
  if (segments.length === 0) return new Refusal(ErrorCode.fileNotFound, 'no file name');
  return segments.join('/');
}

const notFound = new Refusal(ErrorCode.fileNotFound, 'file not found');
const outside = new Refusal(ErrorCode.accessViolation, 'access violation: outside the TFTP root');

/** rootReal: realpath of the root. */
export async function openInRoot(rootReal: string, clean: string): Promise<Source | Refusal> {
  const prefix = rootReal.endsWith('/') ? rootReal : `${rootReal}/`;
  let real: string;
  try {
    real = await realpath(join(rootReal, clean));
  } catch (err) {
    return refusalFor(err);
  }
  if (!real.startsWith(prefix)) return outside;
  let fh: FileHandle;
  try {
    // O_NOFOLLOW: a final component swapped for a symlink after realpath fails here (ELOOP);
    // O_NONBLOCK: a FIFO planted in the root must not hang the open.
    fh = await open(
      real,
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY,
    );
  } catch (err) {
    return refusalFor(err);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Refusal(ErrorCode.accessViolation, 'not a regular file');
    // A directory swapped for a symlink between realpath and open would still pass O_NOFOLLOW;
    // what the descriptor really points at settles it (Linux /proc; skipped where absent).
    const opened = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => real);
    if (!opened.startsWith(prefix)) throw outside;
    return fileSource(fh, st.size);
  } catch (err) {
    await fh.close();
    return err instanceof Refusal ? err : refusalFor(err);
  }
}

function refusalFor(err: unknown): Refusal {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound;
  if (code === 'EACCES' || code === 'EPERM' || code === 'ELOOP')
    return new Refusal(ErrorCode.accessViolation, 'access violation');
  return new Refusal(ErrorCode.notDefined, 'cannot read the file');
}

function fileSource(fh: FileHandle, size: number): Source {
  return {
    size,
    async read(offset, length) {
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    },
    close: () => fh.close(),
  };
}

export function bufferSource(data: Buffer): Source {
  return {
    size: data.length,
    read: async (offset, length) => data.subarray(offset, offset + length),
    close: async () => {},
  };
}
