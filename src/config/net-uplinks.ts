/**
 * Config shapes of the uplinks that reach real networks (issue 4): `vxlan` and `tap`, plus the
 * `capture` option they share. Imported by schema.ts; the values are checked again by the uplinks
 * themselves (uplink/vxlan.ts, uplink/tap.ts) so the API and the config agree.
 */
import { z } from 'zod';
import { isIPv4, isIPv6 } from 'node:net';

const ipLiteral = z.string().refine((s) => isIPv4(s) || isIPv6(s), { error: 'must be an IPv4 or IPv6 address (a literal, not a name)' });
const udpPort = z.int().min(1).max(65535);

/** Write this uplink's traffic to a pcap file from the start. */
export const captureSchema = z.strictObject({
  path: z.string().min(1),
  /** vxlan only: `outer` writes the UDP datagrams (VXLAN header and all), `inner` the Ethernet frames. */
  mode: z.enum(['inner', 'outer']).default('inner'),
});

export const vxlanUplinkSchema = z.strictObject({
  kind: z.literal('vxlan'),
  local: ipLiteral.default('0.0.0.0'),
  port: udpPort.default(4789),
  dstPort: udpPort.default(4789),
  pathMtu: z.int().min(96).max(65535).default(1500),
  ageingSec: z.number().gt(0).max(86400).default(300),
  learn: z.boolean().default(true),
  maxLearned: z.int().min(0).max(1_000_000).default(4096),
  sourcePorts: z.int().min(1).max(64).default(4),
  vnis: z.array(z.strictObject({
    vni: z.int().min(0).max(0xffffff),
    segment: z.int().min(0).max(0x3fff).default(0),
    remotes: z.array(ipLiteral).default([]),
  })).min(1),
  capture: captureSchema.optional(),
});

export const tapUplinkSchema = z.strictObject({
  kind: z.literal('tap'),
  /** Interface name (default: the kernel picks tapN). */
  ifname: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, { error: 'must be 1-15 letters, digits, "_", "." or "-"' }).optional(),
  /** Segment whose frames go to the TAP interface (default 0). */
  segment: z.int().min(0).max(0x3fff).default(0),
  capture: captureSchema.omit({ mode: true }).optional(),
});

export type VxlanUplinkConfig = z.output<typeof vxlanUplinkSchema>;
export type TapUplinkConfig = z.output<typeof tapUplinkSchema>;
