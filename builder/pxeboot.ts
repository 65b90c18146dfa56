// `hvnode iso-to-pxeboot`: make a PXE boot tree from a live ISO.

import type { Command } from '../node-runtime/index.ts';

export const isoToPxebootCommand: Command = {
  name: 'iso-to-pxeboot',
  summary: 'make a PXE boot tree from a live ISO',
};
