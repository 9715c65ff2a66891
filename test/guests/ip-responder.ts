/**
 * Test guest (isolate): a minimal IPv4 host on its VIF that answers ARP requests for its address
 * (RFC 826), ICMP echo requests (RFC 792) and echoes UDP datagrams back to their sender
 * (RFC 768), so a real Linux VM can ping it and talk UDP to it. args: { ip: 'A.B.C.D' }.
 * Reports { arp, icmp, udp } counts on { cmd: 'report' } and exits on { cmd: 'exit' }.
 */
import type { GuestContext } from '../../src/guest/context.js';
import { parseMac } from '../../src/device/mac-table.js';

function csum(b: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  for (let i = 0; i < len - 1; i += 2) s += (b[off + i]! << 8) | b[off + i + 1]!;
  if (len & 1) s += b[off + len - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export default async function main(ctx: GuestContext): Promise<void> {
  const nic = await ctx.vif();
  const mac = parseMac(nic.mac)!;
  const ip = String(ctx.args.ip).split('.').map(Number);
  // udpBadSum: datagrams whose UDP checksum (when present) is wrong: a sender with checksum offload
  // relies on the device to complete it (device/offload.ts).
  const counts = { arp: 0, icmp: 0, udp: 0, udpBadSum: 0, other: 0 };
  let running = true;
  void (async () => {
    for (;;) {
      const m = await ctx.message<{ cmd: string }>();
      if (m.cmd === 'report') ctx.report(counts);
      if (m.cmd === 'exit') {
        running = false;
        return;
      }
    }
  })();
  const isMe = (f: Uint8Array, o: number) => f[o] === ip[0] && f[o + 1] === ip[1] && f[o + 2] === ip[2] && f[o + 3] === ip[3];
  while (running && !nic.unplugged) {
    const n = nic.receive();
    if (n === 0) {
      await nic.wait(5);
      continue;
    }
    const replies: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const f = nic.frame(i).slice(); // private copy before deciding anything
      if (f.length < 42) continue;
      const type = (f[12]! << 8) | f[13]!;
      const out = f;
      out.copyWithin(0, 6, 12); // reply goes to the sender
      out.set(mac, 6);
      if (type === 0x0806 && f[21] === 1 && isMe(f, 38)) {
        // ARP request for our address: turn it into a reply (RFC 826).
        out[21] = 2;
        const senderHw = f.slice(22, 28);
        const senderIp = f.slice(28, 32);
        out.set(senderHw, 32);
        out.set(senderIp, 38);
        out.set(mac, 22);
        out.set(ip, 28);
        counts.arp++;
        replies.push(out);
      } else if (type === 0x0800 && (f[14]! >> 4) === 4 && isMe(f, 30)) {
        const ihl = (f[14]! & 15) * 4;
        const l4 = 14 + ihl;
        const totalLen = (f[16]! << 8) | f[17]!;
        const src = f.slice(26, 30);
        out.set(f.slice(30, 34), 26);
        out.set(src, 30);
        out[22] = 64; // TTL
        out[24] = out[25] = 0;
        const ipSum = csum(out, 14, ihl);
        out[24] = ipSum >> 8;
        out[25] = ipSum & 0xff;
        if (f[23] === 1 && f[l4] === 8) {
          out[l4] = 0; // echo reply (RFC 792)
          out[l4 + 2] = out[l4 + 3] = 0;
          const s = csum(out, l4, totalLen - ihl);
          out[l4 + 2] = s >> 8;
          out[l4 + 3] = s & 0xff;
          counts.icmp++;
          replies.push(out.slice(0, 14 + totalLen));
        } else if (f[23] === 17) {
          const udpLen = (f[l4 + 4]! << 8) | f[l4 + 5]!;
          if (((f[l4 + 6]! << 8) | f[l4 + 7]!) !== 0) {
            // RFC 768: sum over the pseudo-header (src, dst, proto, UDP length) and the datagram.
            let ps = 17 + udpLen;
            for (let k = 26; k < 34; k += 2) ps += (f[k]! << 8) | f[k + 1]!;
            if (csum(f, l4, udpLen, ps) !== 0) counts.udpBadSum++;
          }
          const sp = [f[l4]!, f[l4 + 1]!];
          out[l4] = f[l4 + 2]!;
          out[l4 + 1] = f[l4 + 3]!;
          out[l4 + 2] = sp[0]!;
          out[l4 + 3] = sp[1]!;
          out[l4 + 6] = out[l4 + 7] = 0; // UDP checksum optional over IPv4 (RFC 768)
          counts.udp++;
          replies.push(out.slice(0, 14 + totalLen));
        } else counts.other++;
      } else counts.other++;
    }
    nic.release();
    for (const r of replies) nic.send(r);
  }
}
