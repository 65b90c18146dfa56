// `hvnode iso-to-disk`: write a live ISO to a USB stick or disk image.

import type { Command } from '../node-runtime/index.ts';

export const isoToDiskCommand: Command = {
  name: 'iso-to-disk',
  summary: 'write a live ISO to a USB stick or disk image',
};
