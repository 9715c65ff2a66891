/**
 * `vms:` in the `svnic run` config (issue 5): VM guests whose unmodified Linux virtio-net driver
 * uses an svnic VIF over vhost-user. Each VM has exactly one VIF (the same keys as a guest's VIF)
 * and a vhost-user socket; with `boot`, svnic also starts the VM itself (QEMU/TCG, the cached
 * Debian image of `svnic vm image`), otherwise you start QEMU against the socket yourself
 * (`svnic vm args` prints a command line).
 *
 *   vms:
 *     - name: vm1
 *       socket: /tmp/vm1.sock          # svnic listens; QEMU connects (its default)
 *       mode: server                   # or client: QEMU listens (chardev server=on), svnic reconnects
 *       offloads: false                # true: offer checksum/TSO (docs/vm.md)
 *       vif: { mac: 52:54:00:00:00:01 }
 *       boot: { ip: 10.0.0.1/24, cmd: "ping -c 3 10.0.0.2", memMb: 256 }
 */
import { z } from 'zod';

export const vmBootSchema = z.strictObject({
  /** eth0 address with prefix length. */
  ip: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, { error: 'must be an IPv4 address with prefix, like 10.0.0.1/24' }),
  /** Shell command the VM runs once eth0 is up; the VM powers off when it ends. */
  cmd: z.string().min(1).default('sleep 1000000'),
  memMb: z.int().min(64).max(4096).default(256),
});

export function vmSchema<V extends z.ZodType>(vifSchema: V, name: () => z.ZodString) {
  return z.strictObject({
    name: name(),
    socket: z.string().min(1),
    mode: z.enum(['server', 'client']).default('server'),
    /** Offer checksum/TSO offloads (docs/vm.md: TCP/IPv6 GSO to non-offload destinations is dropped). */
    offloads: z.boolean().default(false),
    vif: vifSchema,
    boot: vmBootSchema.optional(),
  });
}

export interface VmGuestConfig {
  socket: string;
  mode: 'server' | 'client';
  offloads: boolean;
  boot?: z.output<typeof vmBootSchema>;
}
