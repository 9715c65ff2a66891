/**
 * The hypervisor side of the hello example: one device, three guests, one VIF each.
 *   npm run build && node dist/examples/hello.js
 */
import { Hypervisor } from '../src/index.js';

const hv = new Hypervisor();
const dev = await hv.createDevice({ engines: 1 });
const guests = await Promise.all(['a', 'b', 'c'].map((name) =>
  hv.startGuest({ name, module: new URL('./hello-guest.js', import.meta.url).href, args: { expect: 2 } })));
for (const g of guests) await hv.createVifFor(g, dev);
for (const g of guests) g.send('go');
for (const g of guests) console.log(g.id, 'heard', (await g.done() as { heard: string[] }).heard);
await hv.stop();
