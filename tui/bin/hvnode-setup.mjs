#!/usr/bin/env node
// Runs the compiled command (lib/hvnode-setup.mjs; in a checkout compiled again when a source changed).
// The node gets its own bundle of the node runtime instead (builder/build/bundle.ts).
import { launch } from '../../common/launch.mjs';

await launch('hvnode-setup');
