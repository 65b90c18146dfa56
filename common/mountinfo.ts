// /proc/self/mountinfo, the one parser (persist's mount checks, the installer's boot medium).
// A line: ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS,
// with space, tab, newline and backslash in paths written as octal escapes (\040).

export interface MountEntry {
  /** The folder of the mounted filesystem that is mounted here (/ for the whole). */
  root: string;
  mountPoint: string;
  fsType: string;
  /** The device or what stands for it (/dev/sr0, tmpfs, overlay). */
  source: string;
}

/** Undoes the kernel's octal escapes. */
export function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Every well-formed line, in the kernel's order (later mounts on the same point hide earlier ones). */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    const [root, mountPoint] = [fields[3], fields[4]];
    if (root === undefined || mountPoint === undefined) continue;
    entries.push({
      root: unescapeMountinfo(root),
      mountPoint: unescapeMountinfo(mountPoint),
      fsType: sep > 0 ? (fields[sep + 1] ?? '') : '',
      source: sep > 0 ? unescapeMountinfo(fields[sep + 2] ?? '') : '',
    });
  }
  return entries;
}

/** The mount points, as the kernel lists them (a point mounted twice is there twice). */
export function mountPoints(mountinfo: string): string[] {
  return parseMountinfo(mountinfo).map((m) => m.mountPoint);
}

/** The source of the first mount on `mountPoint`, or undefined when nothing is mounted there. */
export function mountSource(mountinfo: string, mountPoint: string): string | undefined {
  return parseMountinfo(mountinfo).find((m) => m.mountPoint === mountPoint && m.source !== '')?.source;
}
