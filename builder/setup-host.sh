#!/usr/bin/env bash
# Prepares a Debian 12 build host for hvnode, idempotently: the Debian packages the builder and
# its tests use, and the npm dependencies. Run as root. Safe to run again: it installs only
# what is missing.
set -euo pipefail

cd "$(dirname "$0")/.."

PACKAGES=(
  mmdebstrap            # the apt backend
  dpkg-dev              # dpkg-architecture: mmdebstrap's eatmydata hook
  squashfs-tools        # mksquashfs
  xorriso               # the ISO
  isolinux              # BIOS boot from the ISO
  syslinux-common       # ldlinux.c32, menu.c32
  pxelinux              # pxelinux.0 for iso-to-pxeboot's tftpboot/
  netcat-openbsd        # PXE tests: QEMU guestfwd to the host's HTTP server
  qemu-system-x86       # boot tests
  qemu-utils
  util-linux            # unshare, mount namespaces
  mount
  cpio
  zstd
  bzip2
  mtools                # FAT images without mounting (this kernel has no vfat)
  attr                  # getfattr/setfattr: the overlay attributes of the image's top layer
  icu-devtools          # derb, genrb: the locale indexes of the ICU data the icu-drop rules filter
  grub-efi-amd64-bin    # UEFI boot of the ISO and of disk images
  grub-pc-bin           # BIOS boot of disk images
  grub-common           # grub-mkimage
  ovmf                  # UEFI firmware for boot tests
  fdisk                 # sfdisk for disk images
  e2fsprogs             # mkfs.ext4, debugfs
  dosfstools            # mkfs.fat (ESP and EFI boot images)
  lvm2                  # HostVG/AppVG in the autoinstall tests (node-runtime/install)
  dnf                   # the dnf backend (Fedora/EL-style profiles)
  rpm                   # rpm (the dnf backend's database, manifests) and rpmbuild (tests)
  createrepo-c          # offline RPM repository in the dnf backend's tests
  tftp-hpa              # TFTP client in PXE and config-server tests
  tftpd-hpa             # in.tftpd: the peer in the config server's TFTP benchmark (its service is not started)
  curl                  # tftp:// and HTTPS clients in the config-server tests
  openssl               # test certificates
  tmux                  # the TUI tests drive hvnode-setup through tmux
  dnsmasq-base          # DHCP in network namespaces (stateless PXE tests)
  iproute2              # network namespaces, veth, bridges
  ca-certificates
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: run as root (it installs Debian packages)" >&2
  exit 2
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-host: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # no daemon is started by a package's install (tftpd-hpa would bind port 69): services are the
  # tests' own business
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup-host: Debian packages present"
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup-host: hvnode's build host needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi

# npm ci only when the lock file changed since the last install
stamp=node_modules/.hvnode-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup-host: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
else
  echo "setup-host: npm dependencies present"
fi
