#!/bin/sh
# run.sh - the Xen backend against a real Xen 4.17 hypervisor booted in QEMU
# (TCG), with a PV domU running a memory-writing workload. `make xen-test`.
#
#   XCC_BUILD      build directory holding bin/xc-colo and lib/ (default build)
#   XENVM_WORK     cache and work directory (default /var/tmp/xc-colo-xen-vm);
#                  downloaded packages and the unpacked base images stay
#                  there, so later runs download nothing
#   XENVM_TIMEOUT  seconds before QEMU is stopped (default 3600: the parts add about 20 min under TCG)
#   XENVM_GUEST_MB domU memory in MiB (default 128)
#   XENVM_XEN      which hypervisor boots: logdirty (default) is Debian
#                  bookworm's point release 4.17.5+72-g01140da4e8-1, built
#                  with shadow paging, so PV guests have log-dirty and the
#                  stock xl migrate / xl remus run; security is the current
#                  bookworm-security build, without shadow paging, where
#                  xc-colo falls back to its digest-scan dirty tracking.
#                  Both boot with the same (current) tools and libraries.
#   XENVM_PVH      1 adds the PVH domU (default 0: at 128 MiB its kernel
#                  panicked "System is deadlocked on memory" in the harness)
#   XENVM_QUICK    1 stops after the interface, create and ops steps (a
#                  quick check while working on them; the verdict is FAIL)
#   XENVM_ONLY     NAME: after the create and ops steps, runs only
#                  dom0-NAME-test.sh from this directory (a part's own steps,
#                  while working on it; the verdict is FAIL, as for QUICK)
#
# Prints a summary table and `XENVM_RESULT PASS` or `XENVM_RESULT FAIL`; the
# serial console log and results.json stay in $XENVM_WORK/run/.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
# With pipefail, a reader that stops early (head, awk's exit) kills the
# writer with SIGPIPE and fails the pipeline, at random: every reader here
# reads its input to the end.

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=${XCC_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
W=${XENVM_WORK:-/var/tmp/xc-colo-xen-vm}
TMO=${XENVM_TIMEOUT:-3600}
GUEST_MB=${XENVM_GUEST_MB:-128}
XENVER=4.17
ARCHLIB=x86_64-linux-gnu
XEN_BUILD=${XENVM_XEN:-logdirty}
LOGDIRTY_XEN_VERSION=4.17.5+72-g01140da4e8-1
HV_PKG=xen-hypervisor-$XENVER-amd64

# Facts from the reference recipe: TCG with -cpu qemu64 is the combination
# that runs dom0 reliably; Xen needs smap=0 under TCG.
QEMU_MEM=3G
# guest_loglvl stays at warning: at "all", Xen logs a line for every frame a
# type query finds foreign, which the backend's M2P scan does by design.
XEN_CMDLINE="console=com1 com1=115200,8n1 dom0_mem=1536M,max:1536M dom0_max_vcpus=2 smap=0 loglvl=all guest_loglvl=warning"
DOM0_CMDLINE="console=hvc0 earlyprintk=xen"

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
say() { echo "xen-vm: $*"; }
die() {
    echo "xen-vm: $*" >&2
    echo "XENVM_RESULT FAIL"
    exit 1
}
T_START=$(now_ms)

case "$W" in *[,\ ]*) die "XENVM_WORK must not contain commas or spaces (QEMU module list): $W" ;; esac
case "$XEN_BUILD" in logdirty|security) ;;
*) die "XENVM_XEN must be logdirty or security, not '$XEN_BUILD'" ;; esac
sh "$HERE/deps.sh"
[ -x "$BUILD/bin/xc-colo" ] || die "no $BUILD/bin/xc-colo: build first (make BUILD=...)"
[ -f "$BUILD/lib/libxccolo.a" ] || die "no $BUILD/lib/libxccolo.a"
mkdir -p "$W/debs" "$W/run"

######################################################################## fetch
# The packages dom0 and the domU are made of, from Debian, cached in debs/.
kernel_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ && !p { p = $2 } END { if (p) print p }'
}
KPKG=${XENVM_KERNEL_PKG:-$(kernel_pkg)}
if [ -z "$KPKG" ]; then
    apt-get update -qq >/dev/null
    KPKG=$(kernel_pkg)
fi
[ -n "$KPKG" ] || die "cannot tell which linux-image package linux-image-amd64 names"
PKGS="xen-utils-$XENVER xen-utils-common xenstore-utils
    libxenmisc$XENVER libxenstore4 libxencall1 libxenforeignmemory1 libxengnttab1
    libxenevtchn1 libxenhypfs1 libxentoolcore1 libxentoollog1 libxendevicemodel1
    libyajl2 libncurses6 libtinfo6 libc6 libgcc-s1 libext2fs2 libcom-err2 liblzma5
    libuuid1 libzstd1 zlib1g libxxhash0 busybox-static $KPKG"

deb_of() { ls -t "$W"/debs/"$1"_*.deb 2>/dev/null | awk 'NR == 1'; }
need=""
for p in $PKGS; do [ -n "$(deb_of "$p")" ] || need="$need $p"; done
if [ -n "$need" ]; then
    say "downloading:$need"
    chmod 777 "$W/debs"    # apt's _apt user writes there when it can
    # shellcheck disable=SC2086
    if ! (cd "$W/debs" && apt-get download -q $need >/dev/null 2>&1); then
        apt-get update -qq >/dev/null
        (cd "$W/debs" && apt-get download -q $need >/dev/null) ||
            die "apt-get download failed:$need"
    fi
fi
DEBS=""
for p in $PKGS; do DEBS="$DEBS $(deb_of "$p")"; done

# The hypervisor, by exact version: the pinned log-dirty point release, or
# the security build apt offers now.
hv_candidate() { apt-cache policy "$HV_PKG" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }'; }
if [ "$XEN_BUILD" = logdirty ]; then
    HV_VER=$LOGDIRTY_XEN_VERSION
else
    HV_VER=$(hv_candidate)
    if [ -z "$HV_VER" ] || [ "$HV_VER" = "(none)" ]; then
        apt-get update -qq >/dev/null
        HV_VER=$(hv_candidate)
    fi
    [ -n "$HV_VER" ] && [ "$HV_VER" != "(none)" ] || die "apt knows no $HV_PKG"
fi
HV_DEB=$W/debs/${HV_PKG}_$(echo "$HV_VER" | sed 's/:/%3a/')_amd64.deb
if [ ! -s "$HV_DEB" ]; then
    say "downloading $HV_PKG=$HV_VER"
    if ! (cd "$W/debs" && apt-get download -q "$HV_PKG=$HV_VER" >/dev/null 2>&1); then
        apt-get update -qq >/dev/null
        (cd "$W/debs" && apt-get download -q "$HV_PKG=$HV_VER" >/dev/null) ||
            die "apt-get download failed: $HV_PKG=$HV_VER"
    fi
fi
[ -s "$HV_DEB" ] || die "no $HV_DEB after the download"
DEBS="$HV_DEB $DEBS"
# Whether this build has PV log-dirty: shadow paging in its config.
SHADOW=$(dpkg-deb --fsys-tarfile "$HV_DEB" | tar -xO --wildcards './boot/xen-*.config' |
    grep -E '^(# )?CONFIG_SHADOW_PAGING[ =]' || true)
say "hypervisor $HV_PKG $HV_VER: ${SHADOW:-no CONFIG_SHADOW_PAGING line}"
if [ "$XEN_BUILD" = logdirty ] && [ "$SHADOW" != CONFIG_SHADOW_PAGING=y ]; then
    die "$HV_PKG $HV_VER has no shadow paging, so no PV log-dirty"
fi
# The domctl interface version of the headers xc-colo is built with.
HOST_DOMCTL=$(awk '$2 == "XEN_DOMCTL_INTERFACE_VERSION" { print $3 }' \
    /usr/include/xen/domctl.h 2>/dev/null)
LIBXEN_VERSION=$(dpkg-query -W -f '${Version}' libxen-dev 2>/dev/null || echo unknown)
say "xc-colo builds against libxen-dev $LIBXEN_VERSION, domctl interface ${HOST_DOMCTL:-unknown}"

######################################################################## base
# Unpacked once per package set: Xen, the dom0 kernel and a dom0 root with
# busybox, the Xen toolstack, its libraries and the five Xen kernel modules.
BASE=$W/base-$XEN_BUILD
STAMP=$(echo "$DEBS" | tr ' ' '\n' | sed 's|.*/||' | sort | md5sum | cut -c1-16)
build_base() {
    say "unpacking the base images"
    rm -rf "$BASE"
    mkdir -p "$BASE/stage"
    local S=$BASE/stage R=$BASE/dom0root d
    for d in $DEBS; do
        case "$d" in
        */linux-image-*)
            # Only the kernel and the Xen driver modules (the rest is 400 MB).
            dpkg-deb --fsys-tarfile "$d" |
                tar -x -C "$S" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/xen/*'
            ;;
        *) dpkg-deb -x "$d" "$S" ;;
        esac
    done
    local K
    K=$(ls "$S/lib/modules" | awk 'NR == 1')
    zcat "$S/boot/xen-$XENVER-amd64.gz" > "$BASE/xen"   # a multiboot ELF32 QEMU loads
    cp "$S/boot/vmlinuz-$K" "$BASE/vmlinuz"

    mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/lib,usr/local/bin,proc,sys,dev,run,tmp,boot,etc/xen,lib/modules}
    mkdir -p "$R"/var/{lib/xen,lib/xenstored,log/xen/console,lock} "$R/opt/xcc/bin" "$R/opt/xcc/lib"
    ln -s /run "$R/var/run"
    cp "$S/bin/busybox" "$R/bin/busybox"
    local a
    for a in $("$R/bin/busybox" --list-full); do
        [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
    done
    cp -a "$S/lib/$ARCHLIB" "$R/lib/"
    cp -a "$S/lib64" "$R/"
    cp -a "$S/usr/lib/$ARCHLIB" "$S/usr/lib/xen-$XENVER" "$S/usr/lib/xen-common" "$R/usr/lib/"
    rm -rf "$R/usr/lib/xen-$XENVER/lib/python" "$R/usr/lib/xen-$XENVER/boot"
    cp -a "$S"/usr/bin/xenstore* "$R/usr/bin/"
    local m
    for m in xenfs/xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd; do
        cp "$S/lib/modules/$K/kernel/drivers/xen/$m.ko" "$R/lib/modules/"
    done
    cp "$BASE/vmlinuz" "$R/boot/vmlinuz"    # the domU runs the same kernel
    : > "$R/etc/xen/xl.conf"                 # or every xl call warns
    (cd "$R" && find . | LC_ALL=C sort > "$BASE/dom0-files")
    (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$BASE/dom0-base.cpio.gz"

    mkdir -p "$BASE/domuroot"/{bin,proc,sys,dev,tmp}
    cp "$S/bin/busybox" "$BASE/domuroot/bin/busybox"
    rm -rf "$S" "$R"
    echo "$STAMP" > "$BASE/stamp"
}
if [ "$(cat "$BASE/stamp" 2>/dev/null)" != "$STAMP" ] || [ ! -s "$BASE/xen" ]; then
    build_base
fi

######################################################################## pack
# Per run: the host-built xc-colo and library, the test programs, the domU
# image and the scripts, as a second cpio archive appended to the base one
# (the kernel unpacks concatenated archives in order).
RUN=$W/run
rm -rf "$RUN"
mkdir -p "$RUN/overlay" "$RUN/domuroot"
O=$RUN/overlay
mkdir -p "$O/opt/xcc/bin" "$O/opt/xcc/lib" "$O/usr/local/bin" "$O/usr/lib/$ARCHLIB" "$O/etc/xen" "$O/boot"

gcc -static -O2 -pthread -Wall -Wextra -Werror -o "$RUN/workload" "$HERE/domu_workload.c"
gcc -static -O2 -Wall -Wextra -Werror -o "$RUN/xcc-count" "$HERE/xcc_count.c"
gcc -D_GNU_SOURCE -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
    -I"$TOP/libxc-colo/include" -I"$TOP/libxc-colo/src" -pthread \
    -o "$RUN/xen-ops-test" "$HERE/xen_ops_test.c" "$BUILD/lib/libxccolo.a" \
    -lxenctrl -lxenforeignmemory -lxenstore -lxenguest -lxentoollog -lxxhash -ljson-c -lzstd -lpthread -lm

cp -a "$BASE/domuroot/." "$RUN/domuroot/"
install -m 755 "$HERE/domu-init.sh" "$RUN/domuroot/init"
install -m 755 "$RUN/workload" "$RUN/domuroot/workload"
(cd "$RUN/domuroot" && find . | cpio -o -H newc --quiet | gzip -1) > "$O/boot/domu.cpio.gz"

install -m 755 "$BUILD/bin/xc-colo" "$O/opt/xcc/bin/xc-colo"
cp -a "$BUILD"/lib/libxccolo.so* "$O/opt/xcc/lib/"
install -m 755 "$RUN/xen-ops-test" "$O/usr/local/bin/xen-ops-test"
install -m 755 "$RUN/xcc-count" "$O/usr/local/bin/xcc-count"
cat > "$O/etc/xcc-harness.conf" <<EOF
XENVM_XEN=$XEN_BUILD
HV_VERSION=$HV_VER
HOST_DOMCTL=$HOST_DOMCTL
LIBXEN_VERSION=$LIBXEN_VERSION
XENVM_PVH=${XENVM_PVH:-0}
XENVM_QUICK=${XENVM_QUICK:-0}
XENVM_ONLY=${XENVM_ONLY:-}
EOF

# Shared libraries the host-built programs need that the base lacks: copy
# the host's (the same Debian release), following their own needs too.
needed() { objdump -p "$1" 2>/dev/null | awk '/NEEDED/ { print $2 }'; }
todo="$O/opt/xcc/bin/xc-colo $(ls "$O"/opt/xcc/lib/libxccolo.so.*.*) $O/usr/local/bin/xen-ops-test"
seen=" "
while [ -n "$todo" ]; do
    next=""
    for f in $todo; do
        for so in $(needed "$f"); do
            case "$seen" in *" $so "*) continue ;; esac
            seen="$seen$so "
            case "$so" in libxccolo.so*) continue ;; esac
            grep -qE "/$so\$" "$BASE/dom0-files" && continue
            path=$(ldconfig -p | awk -v s="$so" '$1 == s && /x86-64/ && !p { p = $NF } END { if (p) print p }')
            [ -n "$path" ] || die "host has no $so for dom0"
            cp -L "$path" "$O/usr/lib/$ARCHLIB/$so"
            next="$next $O/usr/lib/$ARCHLIB/$so"
        done
    done
    todo=$next
done

for n in guest guest-target guest-fresh guest-ckpt guest-tcp guest-mig guest-pvh guest-pvh-target guest-2vcpu; do
    case $n in *pvh*) ty=pvh ;; *) ty=pv ;; esac
    case $n in *2vcpu*) nv=2 ;; *) nv=1 ;; esac
    sed -e "s/@NAME@/$n/" -e "s/@MEM@/$GUEST_MB/" -e "s/@TYPE@/$ty/" \
        -e "s/@VCPUS@/$nv/" "$HERE/guest.cfg.in" > "$O/etc/xen/$n.cfg"
done
install -m 755 "$HERE/dom0-init.sh" "$O/init"
install -m 644 "$HERE/dom0-test.sh" "$O/test.sh"
# Parts' own steps (dom0-NAME-test.sh), sourced by test.sh.
for part in "$HERE"/dom0-*-test.sh; do
    [ -e "$part" ] || continue
    install -m 644 "$part" "$O/$(basename "$part")"
done
(cd "$O" && find . | cpio -o -H newc --quiet | gzip -1) > "$RUN/overlay.cpio.gz"
cat "$BASE/dom0-base.cpio.gz" "$RUN/overlay.cpio.gz" > "$RUN/dom0.cpio.gz"
T_BUILD=$(($(now_ms) - T_START))
say "images ready in $((T_BUILD / 1000)) s; booting Xen $HV_VER (TCG, -cpu qemu64)"

######################################################################## boot
LOG=$RUN/serial.log
T0=$(now_ms)
timeout -k 10 "$TMO" qemu-system-x86_64 -accel tcg,thread=multi -cpu qemu64 -smp 2 \
    -m "$QEMU_MEM" -display none -monitor none -serial "file:$LOG" -no-reboot \
    -kernel "$BASE/xen" -append "$XEN_CMDLINE" \
    -initrd "$BASE/vmlinuz $DOM0_CMDLINE,$RUN/dom0.cpio.gz" </dev/null >"$RUN/qemu.out" 2>&1 &
QPID=$!
# dom0 powers off when done; if QEMU outlives XENVM_END by 30 s, stop it.
end_seen=0
while kill -0 $QPID 2>/dev/null; do
    sleep 2
    if [ $end_seen = 0 ] && grep -qa 'XENVM_END' "$LOG" 2>/dev/null; then
        end_seen=$(now_ms)
    fi
    if [ $end_seen != 0 ] && [ $(($(now_ms) - end_seen)) -gt 30000 ]; then
        say "poweroff did not stop QEMU; stopping it"
        kill $QPID 2>/dev/null || true
        break
    fi
done
qrc=0
wait $QPID || qrc=$?
T_VM=$(($(now_ms) - T0))
[ $qrc = 124 ] && say "QEMU stopped after the ${TMO}s timeout"

######################################################################## report
python3 "$HERE/summary.py" "$LOG" "$RUN/results.json" \
    --build-seconds "$((T_BUILD / 1000))" --vm-seconds "$((T_VM / 1000))" \
    --total-seconds "$((($(now_ms) - T_START) / 1000))"
