/**
 * /init of the VM image (busybox sh). Kernel command line parameters it reads:
 *   svnic.ip=A.B.C.D/N   address for eth0 (the first virtio-net device)
 *   svnic.cmd=BASE64     shell command to run once the network is up (base64: no spaces on the line)
 * It prints markers on the console that vm/qemu.ts parses: SVNIC-READY when eth0 is up, the
 * command's output, then SVNIC-RC=<exit status>, and powers off (QEMU runs with -no-reboot).
 */

/** Modules in dependency order (the cloud kernel package has no modules.dep for modprobe). */
export const MODULE_ORDER = [
  'virtio_ring', 'virtio', 'virtio_mmio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci',
  'failover', 'net_failover', 'virtio_net',
];

export const INIT_SCRIPT = `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in ${MODULE_ORDER.join(' ')}; do insmod /lib/modules/$m.ko || echo "SVNIC-INSMOD-FAILED $m"; done
ip=; cmd=
for a in $(cat /proc/cmdline); do
  case "$a" in svnic.ip=*) ip=\${a#svnic.ip=};; svnic.cmd=*) cmd=\${a#svnic.cmd=};; esac
done
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
[ -n "$ip" ] && ip addr add "$ip" dev eth0
ip link set eth0 up
echo SVNIC-READY
echo "$cmd" | base64 -d > /tmp/cmd.sh
sh /tmp/cmd.sh 2>&1
echo "SVNIC-RC=$?"
poweroff -f
`;
