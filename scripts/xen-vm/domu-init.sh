#!/bin/busybox sh
# PV domU /init: mount the basics, then become the workload. It never forks
# again, so the guest's page-table pages stay where they are.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
exec /workload
