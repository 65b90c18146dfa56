#!/bin/sh
# hvnode: what the consoles run before agetty (the getty drop-ins' ExecStartPre). Whether they
# offer the installer is decided once per boot by `hvnode-node ready` (hvnode-ready.service
# comes before the login prompts) from the kernel command line: it leaves the line to show in
# /run/hvnode/console-installer on the live image booted without autoinstall arguments, and
# nothing on an installed or stateless node, where the login prompt comes at once. The
# installer (Node.js, ~22 MiB each) starts on the console where Enter is pressed: an idle
# console holds none, and no boot starts one only to decide.
offer="${HVNODE_RUN:-/run}/hvnode/console-installer"
[ -r "$offer" ] || exit 0
printf '\n'
cat "$offer"
read -r _ || exit 0
exec "${HVNODE_SETUP:-/usr/bin/hvnode-setup}" --console
