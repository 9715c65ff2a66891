/**
 * `svnic vm`: the VM harness by hand. `image` builds (once) and prints the cached guest image;
 * `args` prints a QEMU command line for a VM on an svnic vhost-user socket; `boot` runs that VM,
 * streams its console, and exits with the status of the command it ran.
 */
import type { Command } from 'commander';

interface VmCliOptions { socket: string; mac: string; ip: string; cmd: string; mem: number; server?: boolean; name: string }

function vmOptions(c: Command): Command {
  return c
    .requiredOption('--socket <path>', 'vhost-user socket of the svnic VIF (see `vms:` in docs/config.md)')
    .requiredOption('--mac <mac>', 'the VIF\'s MAC (svnic drops frames from any other source MAC)')
    .requiredOption('--ip <addr/prefix>', 'eth0 address, e.g. 10.0.0.1/24')
    .option('--cmd <shell>', 'command the guest runs once eth0 is up (it powers off after)', 'sleep 1000000')
    .option('--mem <MiB>', 'guest RAM (shared memfd)', Number, 256)
    .option('--server', 'QEMU listens on the socket (chardev server=on); svnic connects (vms: mode client)')
    .option('--name <name>', 'VM name', 'svnic-vm');
}

export function registerVm(program: Command): void {
  const vm = program
    .command('vm')
    .description('VM guests: build the guest image, print or run a QEMU (TCG) command line for an svnic vhost-user VIF');
  vm.command('image')
    .description('build the guest image from Debian packages into the cache (once) and print its paths')
    .action(async () => {
      const { ensureImage, defaultCacheDir } = await import('../vm/image.js');
      const img = ensureImage();
      process.stdout.write(`cache   ${defaultCacheDir()}\nkernel  ${img.kernel}\ninitrd  ${img.initrd}\nversion ${img.kernelVersion}\n`);
    });
  vmOptions(vm.command('args').description('print the QEMU command line for a VM on an svnic vhost-user socket'))
    .action(async (o: VmCliOptions) => {
      const { ensureImage } = await import('../vm/image.js');
      const { qemuArgs } = await import('../vm/qemu.js');
      const args = qemuArgs({ name: o.name, image: ensureImage(), mac: o.mac, ip: o.ip, cmd: o.cmd, memMb: o.mem, net: { kind: 'vhost-user', socket: o.socket, server: o.server } });
      process.stdout.write(`qemu-system-x86_64 ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}\n`);
    });
  vmOptions(vm.command('boot').description('boot a VM on an svnic vhost-user socket; console to stdout; exit status = the guest command\'s'))
    .action(async (o: VmCliOptions) => {
      const { ensureImage } = await import('../vm/image.js');
      const { Vm } = await import('../vm/qemu.js');
      const v = new Vm({ name: o.name, image: ensureImage(), mac: o.mac, ip: o.ip, cmd: o.cmd, memMb: o.mem, net: { kind: 'vhost-user', socket: o.socket, server: o.server } });
      v.proc.stdout!.on('data', (s: string) => process.stdout.write(s));
      v.proc.stderr!.on('data', (s: string) => process.stderr.write(s));
      process.once('SIGINT', () => v.kill('SIGTERM'));
      const r = await v.done;
      process.exitCode = r.rc < 0 ? 1 : r.rc;
    });
}
