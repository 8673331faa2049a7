#!/bin/sh
# dom0 /init in the harness VM: start Xen's toolstack daemons, run the test
# script, power off (Xen then enters S5 and QEMU exits).
export PATH=/usr/lib/xen-4.17/bin:/opt/xcc/bin:/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run/xen /run/xenstored
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mkdir -p /run/xen /run/xenstored
ln -sf /proc/self/fd /dev/fd
echo "XENVM_DOM0_INIT uptime $(cut -d' ' -f1 /proc/uptime)"

# Load order matters: privcmd first, evtchn/gntdev before the daemons.
for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc; do
    insmod /lib/modules/$m.ko || echo "XENVM_WARN insmod $m failed"
done
mount -t xenfs xenfs /proc/xen
ifconfig lo 127.0.0.1 up    # saves over loopback TCP

export XENSTORED_ROOTDIR=/run/xenstored
xenstored --pid-file /run/xenstored.pid
i=0
until xenstore-read -s / >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 20 ] && { echo "XENVM_WARN xenstored not up"; break; }
    sleep 1
done
xen-init-dom0
xenconsoled --pid-file /run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
echo "XENVM_DOM0_READY uptime $(cut -d' ' -f1 /proc/uptime)"

sh /test.sh 2>&1
echo "XENVM_END"
sync
poweroff -f
sleep 60
