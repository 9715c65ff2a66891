/**
 * Shared set-up for tests with real VMs: decide whether they can run here (root, QEMU, the native
 * addon, the guest image), skipping loudly otherwise and failing under CI=true. Builds the image
 * once (cached under ~/.cache/svnic/vm or $SVNIC_CACHE).
 */
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { nativeAvailable } from '../../src/native/index.js';
import { ensureImage, type VmImage } from '../../src/vm/image.js';

let image: VmImage | null = null;
let why = '';

function probe(): string {
  if (process.getuid?.() !== 0) return 'not root (QEMU vhost-user tests need root for apt-get download on a fresh machine and /dev access)';
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'qemu-system-x86_64 missing (apt-get install qemu-system-x86; see .ci/packages/vm.txt)';
  }
  if (!nativeAvailable()) return 'native addon not built (npm ci)';
  try {
    image = ensureImage();
  } catch (e) {
    return `guest image: ${(e as Error).message}`;
  }
  return '';
}

/** The image, or null after a loud skip (a failure under CI=true). */
export function vmImageOrSkip(t: TestContext): VmImage | null {
  if (!image && !why) why = probe() || '';
  if (image) return image;
  const msg = `SKIPPED VM test: ${why}`;
  if (process.env.CI === 'true') throw new Error(`${msg} (CI=true: a skip is a failure)`);
  console.warn(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return null;
}
