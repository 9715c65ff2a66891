/** Start a `vxlan` or `tap` uplink from its run-config entry (config/net-uplinks.ts), with its capture if asked. */
import type { Device } from '../hypervisor/device.js';
import type { TapUplinkConfig, VxlanUplinkConfig } from '../config/net-uplinks.js';
import { VxlanUplink } from './vxlan.js';
import type { Uplink } from './uplink.js';

export async function attachNetUplink(d: Device, u: VxlanUplinkConfig | TapUplinkConfig): Promise<Uplink> {
  if (u.kind === 'vxlan') {
    const { kind: _k, capture, ...opts } = u;
    const up = await VxlanUplink.attach(d, opts);
    if (capture) {
      try {
        await up.capture(capture.path, capture.mode);
      } catch (e) {
        await up.stop();
        throw e;
      }
    }
    return up;
  }
  const { TapUplink } = await import('./tap.js');
  const up = await TapUplink.attach(d, { ifname: u.ifname, segment: u.segment });
  if (u.capture) {
    try {
      await up.capture(u.capture.path);
    } catch (e) {
      await up.stop();
      throw e;
    }
  }
  return up;
}
