/**
 * The VM guest image: a Debian cloud kernel plus a busybox-static initramfs with the virtio-net
 * modules and iperf3, built from Debian's packages into a cache directory (no package is installed
 * on the host: `apt-get download` + `dpkg-deb -x`). Built once, reused while its inputs are the same.
 *
 *   <cache>/debs/*.deb            downloaded packages
 *   <cache>/<kernel version>/     vmlinuz, initrd.img, stamp
 *
 * The init script (vm/init-script.ts) loads the modules in dependency order (the package has no
 * modules.dep), sets the IP address from the kernel command line and runs the command given there.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { INIT_SCRIPT, MODULE_ORDER } from './init-script.js';
import { SvnicError } from '../hypervisor/errors.js';

export interface VmImage {
  kernel: string;
  initrd: string;
  kernelVersion: string;
}

/** Userland packages unpacked into the image, besides the kernel. */
const USER_PACKAGES = ['busybox-static', 'iperf3', 'libiperf0', 'libsctp1', 'libssl3', 'libc6'];
/** Shared objects iperf3 needs (its NEEDED entries and theirs), and the loader. */
const LIBS = [
  'lib/x86_64-linux-gnu/libc.so.6', 'lib/x86_64-linux-gnu/libm.so.6', 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
  'usr/lib/x86_64-linux-gnu/libiperf.so.0', 'usr/lib/x86_64-linux-gnu/libsctp.so.1',
  'usr/lib/x86_64-linux-gnu/libssl.so.3', 'usr/lib/x86_64-linux-gnu/libcrypto.so.3',
];
const IMAGE_FORMAT = 2; // bump when the image's contents or init script change

export function defaultCacheDir(): string {
  return process.env.SVNIC_CACHE ? join(process.env.SVNIC_CACHE, 'vm') : join(homedir(), '.cache', 'svnic', 'vm');
}

function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new SvnicError('VM_IMAGE', `${cmd} ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim().slice(0, 400)}`);
  }
}

/** The versioned kernel package the cloud meta-package depends on, e.g. linux-image-6.1.0-56-cloud-amd64. */
function kernelPackage(): string {
  const out = run('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const m = /Depends: (linux-image-[0-9][^\s]*-cloud-amd64)/.exec(out);
  if (!m) throw new SvnicError('VM_IMAGE', 'apt-cache knows no linux-image-cloud-amd64: run `apt-get update` (Debian 12 package lists needed)');
  return m[1]!;
}

function download(debs: string, pkgs: string[]): void {
  const have = readdirSync(debs);
  const missing = pkgs.filter((p) => !have.some((f) => f.startsWith(`${p}_`)));
  if (missing.length === 0) return;
  try {
    run('apt-get', ['download', ...missing], debs);
  } catch {
    // Package lists may be stale or absent on a fresh machine: refresh once (needs root), retry.
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['download', ...missing], debs);
  }
}

/**
 * Return the cached image, building it first if needed. Throws SvnicError('VM_IMAGE') with the
 * failing step when a tool or package is missing.
 */
export function ensureImage(cacheDir = defaultCacheDir()): VmImage {
  const kpkg = kernelPackage();
  const version = kpkg.replace(/^linux-image-/, '');
  const out = join(cacheDir, `${version}-f${IMAGE_FORMAT}`);
  const img = { kernel: join(out, 'vmlinuz'), initrd: join(out, 'initrd.img'), kernelVersion: version };
  if (existsSync(join(out, 'stamp'))) return img;

  const debs = join(cacheDir, 'debs');
  mkdirSync(debs, { recursive: true });
  download(debs, [kpkg, ...USER_PACKAGES]);
  const work = mkdtempSync(join(tmpdir(), 'svnic-vm-image-'));
  try {
    const root = join(work, 'pkgs');
    mkdirSync(root);
    for (const f of readdirSync(debs)) {
      const p = f.split('_')[0]!;
      if (p === kpkg || USER_PACKAGES.includes(p)) run('dpkg-deb', ['-x', join(debs, f), root]);
    }
    const ird = join(work, 'initrd');
    for (const d of ['bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'lib/modules', 'lib64', 'usr/bin']) mkdirSync(join(ird, d), { recursive: true });
    copyFileSync(join(root, 'bin/busybox'), join(ird, 'bin/busybox'));
    chmodSync(join(ird, 'bin/busybox'), 0o755);
    symlinkSync('busybox', join(ird, 'bin/sh'));
    copyFileSync(join(root, 'usr/bin/iperf3'), join(ird, 'usr/bin/iperf3'));
    chmodSync(join(ird, 'usr/bin/iperf3'), 0o755);
    for (const l of LIBS) {
      mkdirSync(dirname(join(ird, l)), { recursive: true });
      copyFileSync(join(root, l), join(ird, l)); // copyFileSync follows the package's symlinks
    }
    symlinkSync('../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(ird, 'lib64/ld-linux-x86-64.so.2'));
    const modDir = join(root, 'lib/modules', version, 'kernel');
    const found = run('find', [modDir, '-name', '*.ko']).split('\n').filter(Boolean);
    for (const m of MODULE_ORDER) {
      const f = found.find((x) => x.endsWith(`/${m}.ko`));
      if (!f) throw new SvnicError('VM_IMAGE', `module ${m}.ko not in ${kpkg}: the kernel package layout changed`);
      copyFileSync(f, join(ird, 'lib/modules', `${m}.ko`));
    }
    writeFileSync(join(ird, 'init'), INIT_SCRIPT, { mode: 0o755 });
    writeFileSync(join(ird, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    mkdirSync(out, { recursive: true });
    // newc cpio from busybox (the cpio package is often absent); paths relative to the root.
    const list = run('find', ['.'], ird).split('\n').filter(Boolean).sort().join('\n') + '\n';
    const cpio = execFileSync(join(ird, 'bin/busybox'), ['cpio', '-o', '-H', 'newc'], { cwd: ird, input: list, maxBuffer: 256 << 20 });
    writeFileSync(join(out, 'initrd.img'), cpio);
    copyFileSync(join(root, 'boot', `vmlinuz-${version}`), join(out, 'vmlinuz'));
    writeFileSync(join(out, 'stamp'), `${kpkg} format ${IMAGE_FORMAT}\n`);
    return img;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
