/** `svnic run` with VM guests from the config (vms: with boot): two VMs ping each other. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/schema.js';
import { applyConfig } from '../../src/config/apply.js';
import { vmImageOrSkip } from '../helpers/vm-env.js';

test('a run config with two booted VM guests: they ping each other, then the run sees them done', { timeout: 120_000 }, async (t) => {
  if (!vmImageOrSkip(t)) return;
  const sock = (n: number) => join(tmpdir(), `sv5-cfg-${process.pid}-${n}.sock`);
  const config = validateConfig({
    device: { engines: 1 },
    vms: [1, 2].map((i) => ({
      name: `vm${i}`, socket: sock(i), vif: { mac: `52:54:00:05:02:0${i}` },
      boot: { ip: `10.5.2.${i}/24`, cmd: `i=0; until ping -c 1 -W 1 10.5.2.${3 - i} > /dev/null; do i=$((i+1)); [ $i -ge 60 ] && exit 1; done; ping -c 3 10.5.2.${3 - i} && sleep 4` }, // stay up for the other's pings
    })),
  });
  const running = await applyConfig(config);
  try {
    await running.guestsExited;
    const snap = running.counters();
    for (const g of snap.guests) assert.equal(g.state, 'done', JSON.stringify(g));
    for (const v of snap.vifs) assert.ok(v.counters.tx_frames >= 3 && v.counters.rx_frames >= 3, JSON.stringify(v));
  } finally {
    await running.stop();
  }
});
