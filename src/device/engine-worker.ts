/**
 * Worker entry for one device engine. Control messages arrive on a MessagePort that the engine
 * drains synchronously (receiveMessageOnPort) when the control word of its doorbell page is set,
 * because its loop never yields to the event loop. Packets never travel on this port.
 */
import { workerData, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Engine, type EngineConfig } from './engine.js';
import { FrameRing } from '../layout/frame-ring.js';
import type { EngineCommand } from './engine-protocol.js';
import { CaptureTap } from '../capture/capture-ring.js';

const { cfg, port } = workerData as { cfg: EngineConfig; port: MessagePort };
const engine = new Engine(cfg);

function handle(cmd: EngineCommand): unknown {
  switch (cmd.op) {
    case 'add-vif':
      engine.addVif(cmd.spec);
      return null;
    case 'remove-vif':
      return engine.removeVif(cmd.slot);
    case 'change-vif':
      engine.changeVif(cmd.change);
      return null;
    case 'fdb':
      engine.setFdb(cmd.entries, cmd.slotEngine);
      return null;
    case 'fwd':
      engine.sw.fwdOut = cmd.out.map((r) => (r ? new FrameRing(r.ring).asProducer() : null));
      engine.sw.fwdOutWake = cmd.out.map((r) => (r ? new Int32Array(r.wake) : null));
      engine.sw.fwdIn = cmd.in.map((r) => new FrameRing(r).asConsumer());
      return null;
    case 'uplink':
      engine.sw.toUplink = cmd.toUplink ? new FrameRing(cmd.toUplink.ring).asProducer() : null;
      engine.sw.toUplinkWake = cmd.toUplink ? new Int32Array(cmd.toUplink.wake) : null;
      engine.sw.fromUplink = cmd.fromUplink.map((r) => new FrameRing(r).asConsumer());
      engine.sw.reflect = cmd.reflect;
      return null;
    case 'capture':
      engine.capture = new CaptureTap(cmd.ring);
      engine.capSlots = new Uint8Array(cmd.slots);
      return null;
    case 'sync':
      return null;
    case 'stop':
      engine.stop();
      return null;
  }
}

engine.onControl = () => {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const cmd = m.message as EngineCommand;
    try {
      port.postMessage({ type: 'ack', reqId: cmd.reqId, result: handle(cmd) });
    } catch (e) {
      port.postMessage({ type: 'ack', reqId: cmd.reqId, error: (e as Error).message });
    }
  }
};
engine.onEvent = (ev) => port.postMessage({ type: 'event', event: ev });
engine.run();
port.close();
