/**
 * Worker entry of the driver domain (Xen's dom0 for networking): runs DriverDomainLoop. Control
 * messages arrive on a MessagePort drained synchronously when the CONTROL word of its private
 * control page is set (its loop never yields to the event loop). Packets never travel on it.
 */
import { workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { DriverDomainLoop, type DriverDomainConfig } from './driver-domain-loop.js';
import type { VifSpec } from '../device/engine-vif.js';

export type DriverDomainCommand = { reqId: number } & (
  | { op: 'add-netif'; spec: VifSpec }
  | { op: 'remove-netif'; slot: number }
  | { op: 'sync' }
  | { op: 'stop' }
);

const { cfg, port } = workerData as { cfg: DriverDomainConfig; port: MessagePort };
const loop = new DriverDomainLoop(cfg);

function handle(cmd: DriverDomainCommand): unknown {
  switch (cmd.op) {
    case 'add-netif':
      loop.addNetif(cmd.spec);
      return null;
    case 'remove-netif':
      return loop.removeNetif(cmd.slot, performance.now());
    case 'sync':
      return null;
    case 'stop':
      loop.stop();
      return null;
  }
}

loop.onControl = () => {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const cmd = m.message as DriverDomainCommand;
    try {
      port.postMessage({ type: 'ack', reqId: cmd.reqId, result: handle(cmd) });
    } catch (e) {
      port.postMessage({ type: 'ack', reqId: cmd.reqId, error: (e as Error).message });
    }
  }
};
loop.onEvent = (ev) => port.postMessage({ type: 'event', event: ev });
loop.run();
port.close();
