/**
 * UDP sockets for guest programs, shaped like node:dgram's Socket (bind, send, 'message' with
 * (msg, rinfo), address, close) so code written for Node reads the same. Datagrams go through the
 * guest's NetStack (stack.ts), not the host's.
 */
import { EventEmitter } from 'node:events';
import { formatIpv4, parseIpv4 } from './addr.js';

export interface RemoteInfo {
  address: string;
  family: 'IPv4';
  port: number;
  size: number;
}

/** What a socket needs from the stack (implemented by NetStack). */
export interface UdpHost {
  readonly ip: number;
  bindUdp(sock: UdpSocket, port: number): number;
  unbindUdp(port: number): void;
  sendUdp(srcPort: number, dstIp: number, dstPort: number, data: Uint8Array): 'sent' | 'queued' | string;
}

export class UdpSocket extends EventEmitter {
  private port = -1;
  private closed = false;

  constructor(private readonly host: UdpHost) {
    super();
  }

  bind(port?: number | { port?: number }, cb?: () => void): this {
    if (this.closed) throw new Error('socket is closed');
    if (this.port >= 0) throw new Error('socket is already bound');
    const p = typeof port === 'object' ? port.port ?? 0 : port ?? 0;
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new RangeError(`port must be in 0..65535, got ${p}`);
    this.port = this.host.bindUdp(this, p);
    queueMicrotask(() => {
      cb?.();
      this.emit('listening');
    });
    return this;
  }

  address(): { address: string; family: 'IPv4'; port: number } {
    return { address: formatIpv4(this.host.ip), family: 'IPv4', port: this.port };
  }

  /**
   * send(msg, port, address, cb?) or send(msg, offset, length, port, address, cb?). An unbound
   * socket is bound to an ephemeral port first (as node:dgram does). cb(err, bytes) runs once the
   * datagram is on the transmit ring or waiting for ARP; err says why it was dropped.
   */
  send(msg: Uint8Array | string, ...rest: unknown[]): void {
    let data = typeof msg === 'string' ? new TextEncoder().encode(msg) : msg;
    if (typeof rest[0] === 'number' && typeof rest[1] === 'number' && typeof rest[2] === 'number') {
      data = data.subarray(rest[0] as number, (rest[0] as number) + (rest[1] as number));
      rest = rest.slice(2);
    }
    const [port, address, cb] = rest as [number, string, ((err: Error | null, bytes?: number) => void) | undefined];
    if (this.closed) throw new Error('socket is closed');
    const dst = parseIpv4(address);
    if (dst === null) throw new TypeError(`address must be an IPv4 literal, got ${address}`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port must be in 1..65535, got ${port}`);
    if (this.port < 0) this.bind(0);
    const r = this.host.sendUdp(this.port, dst, port, data);
    const err = r === 'sent' || r === 'queued' ? null : new Error(`datagram dropped: ${r}`);
    if (cb) queueMicrotask(() => cb(err, err ? undefined : data.length));
    else if (err) this.emit('error', err);
  }

  /** Called by the stack for each datagram to this socket's port. */
  deliver(data: Buffer, from: number, fromPort: number): void {
    this.emit('message', data, { address: formatIpv4(from), family: 'IPv4', port: fromPort, size: data.length } satisfies RemoteInfo);
  }

  close(cb?: () => void): void {
    if (this.closed) return;
    this.closed = true;
    if (this.port >= 0) this.host.unbindUdp(this.port);
    queueMicrotask(() => {
      cb?.();
      this.emit('close');
    });
  }
}
