#!/bin/sh
# An hvnode image can be several read-only squashfs layers stacked by overlayfs (LiveOS/layers
# lists them, bottom first; see common/layers.ts), but dmsquash-live knows one: it mounts the
# base, LiveOS/squashfs.img, at /run/rootfsbase, and the overlayfs module's mount hook puts the
# writable overlay on that. This pre-mount hook runs in between: it mounts the further layers and
# turns /run/rootfsbase into a read-only overlay of all of them, so the unchanged mount hook
# stacks on the whole image (overlay depth 2). The list and layers come from the medium
# (/run/initramfs/live/LiveOS; copied to RAM with rd.live.ram), or, for an HTTP boot
# (root=live:http://.../squashfs.img, fetched by livenet), from beside that URL, into RAM.
# Without a list (one layer: --single-layer and older images) it does nothing.
# Sourced by dracut (source_hook): no exit, and its names start with hvl_.
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

HVL_BASE=squashfs.img
HVL_RAM=/run/initramfs/layers
HVL_MNT=/run/hvnode/layers
# spelled out: a range like A-Z can match more letters than these in some locales
HVL_ALNUM=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789

# hvl_check_list FILE: dies unless each line (less # comments and blanks) is a layer file name
# (letters, digits, . _ -, ending .img, at most 67 characters, as LAYER_NAME), each named once,
# the base first; sets hvl_names to them, space-separated.
hvl_check_list() {
    local n=0 raw line names=""
    while IFS= read -r raw || [ -n "$raw" ]; do
        n=$((n + 1))
        line=${raw%%#*}
        line=${line#"${line%%[![:space:]]*}"}
        line=${line%"${line##*[![:space:]]}"}
        [ -n "$line" ] || continue
        case "$line" in
            [$HVL_ALNUM]*.img) ;;
            *) line="" ;;
        esac
        case "$line" in
            *[!$HVL_ALNUM._-]*) line="" ;;
        esac
        if [ -z "$line" ] || [ ${#line} -gt 67 ]; then
            die "hvnode: $1:$n: not a layer file name: \"$raw\" (one file name per line: letters, digits, . _ -, ending in .img)"
            return 1
        fi
        case " $names " in
            *" $line "*)
                die "hvnode: $1:$n: layer $line is listed twice"
                return 1
                ;;
        esac
        if [ -z "$names" ] && [ "$line" != "$HVL_BASE" ]; then
            die "hvnode: $1:$n: the first (bottom) layer must be $HVL_BASE, not $line"
            return 1
        fi
        names="${names:+$names }$line"
    done < "$1"
    if [ -z "$names" ]; then
        die "hvnode: $1 lists no layers (the first must be $HVL_BASE)"
        return 1
    fi
    hvl_names=$names
}

# hvl_curl URL OUT: curl as livenet fetches (url-lib's options: retries, rd.noverifyssl, proxy),
# three tries 5 s apart; a 404 fails at once. Sets hvl_http to the HTTP status; curl's error
# is left in $HVL_RAM/curl.err.
hvl_curl() {
    local i=1 rc
    mkdir -p "$HVL_RAM"
    while :; do
        # shellcheck disable=SC2086
        hvl_http=$(curl -sS $hvl_curl_args --output "$2" --write-out '%{http_code}' -- "$1" 2> "$HVL_RAM/curl.err")
        rc=$?
        if [ $rc -eq 0 ]; then
            rm -f "$HVL_RAM/curl.err"
            return 0
        fi
        [ "$hvl_http" = 404 ] && return $rc
        [ $i -ge 3 ] && return $rc
        warn "hvnode: fetching $1 failed ($(cat "$HVL_RAM/curl.err")); trying again"
        sleep 5
        i=$((i + 1))
    done
}

# hvl_fetch_list URL: the HTTP boot's list into $HVL_RAM/layers; false when there is none (404).
hvl_fetch_list() {
    local url="$1" dir
    dir=${url%/*}
    if [ -z "$hvl_curl_args" ]; then
        [ -r /lib/url-lib.sh ] && . /lib/url-lib.sh
        hvl_curl_args=${curl_args:---globoff --location --retry 3 --retry-connrefused --fail --show-error}
    fi
    command -v curl > /dev/null || {
        die "hvnode: no curl in the initramfs to fetch $dir/layers (is dracut's livenet module in?)"
        return 1
    }
    if ! hvl_curl "$dir/layers" "$HVL_RAM/layers.part"; then
        rm -f "$HVL_RAM/layers.part"
        if [ "$hvl_http" = 404 ]; then
            rm -f "$HVL_RAM/curl.err"
            rmdir "$HVL_RAM" 2> /dev/null
            return 1
        fi
        die "hvnode: cannot fetch the image's layer list $dir/layers: $(cat "$HVL_RAM/curl.err")"
        return 1
    fi
    mv "$HVL_RAM/layers.part" "$HVL_RAM/layers"
}

# hvl_mount NAME FILE: mounts one layer read-only at $HVL_MNT/NAME.
hvl_mount() {
    mkdir -p "$HVL_MNT/$1"
    mount -n -r -t squashfs -o loop "$2" "$HVL_MNT/$1" || {
        die "hvnode: cannot mount image layer $1 ($2): not a squashfs, or damaged"
        return 1
    }
}

hvl_stack() {
    local live_dir root url src list names name lower="" ram=""
    grep -q " $HVL_MNT/$HVL_BASE " /proc/self/mounts && return 0 # stacked already
    live_dir=$(getarg rd.live.dir -d live_dir)
    [ -n "$live_dir" ] || live_dir=LiveOS
    src=/run/initramfs/live/$live_dir
    list=$src/layers
    if [ ! -e "$list" ]; then
        root=$(getarg root=)
        url=${root#live:}
        case "$url" in
            *.[Ii][Ss][Oo]) return 0 ;; # an ISO over HTTP is a medium (mounted on .../live)
            http://*/* | https://*/*) ;;
            *) return 0 ;;
        esac
        hvl_fetch_list "$url" || return 0
        src=${url%/*}
        list=$HVL_RAM/layers
    fi
    hvl_check_list "$list" || return 1
    names=$hvl_names
    [ "$names" = "$HVL_BASE" ] && return 0
    grep -q " /run/rootfsbase " /proc/self/mounts || {
        die "hvnode: $list lists layers, but the base layer is not mounted at /run/rootfsbase"
        return 1
    }
    getargbool 0 rd.live.ram -d -y live_ram && ram=yes
    info "hvnode: stacking the image layers from $src: $names"
    modprobe -q -a loop squashfs overlay 2> /dev/null
    if [ -n "$ram" ] && [ "$list" != "$HVL_RAM/layers" ]; then
        mkdir -p "$HVL_RAM" && cp "$list" "$HVL_RAM/layers"
    fi
    # the base, mounted by dmsquash-live, goes beside the others (a bind: --move is refused
    # under a shared /run)
    mkdir -p "$HVL_MNT/$HVL_BASE"
    mount -n --bind /run/rootfsbase "$HVL_MNT/$HVL_BASE" && umount -n /run/rootfsbase || {
        die "hvnode: cannot move the base layer from /run/rootfsbase to $HVL_MNT/$HVL_BASE"
        return 1
    }
    for name in $names; do
        if [ "$name" != "$HVL_BASE" ]; then
            case "$src" in
                http://* | https://*)
                    info "hvnode: fetching layer $src/$name"
                    hvl_curl "$src/$name" "$HVL_RAM/$name" || {
                        die "hvnode: cannot fetch image layer $src/$name (listed in $src/layers): $(cat "$HVL_RAM/curl.err")"
                        return 1
                    }
                    hvl_mount "$name" "$HVL_RAM/$name" || return 1
                    ;;
                *)
                    [ -f "$src/$name" ] || {
                        die "hvnode: image layer $src/$name (listed in $list) is missing"
                        return 1
                    }
                    if [ -n "$ram" ]; then
                        info "hvnode: copying layer $name to RAM"
                        cp "$src/$name" "$HVL_RAM/$name" || {
                            die "hvnode: cannot copy image layer $name to RAM ($HVL_RAM)"
                            return 1
                        }
                        hvl_mount "$name" "$HVL_RAM/$name" || return 1
                    else
                        hvl_mount "$name" "$src/$name" || return 1
                    fi
                    ;;
            esac
        fi
        lower="$HVL_MNT/$name${lower:+:$lower}"
    done
    mount -n -t overlay -o "ro,lowerdir=$lower" hvnode-layers /run/rootfsbase || {
        die "hvnode: cannot stack the image layers (overlay lowerdir=$lower)"
        return 1
    }
}

hvl_stack
