/** virtio 1.2 constants used by svnic. Feature bits are numbers 0..63; see feature helpers. */

// Device status bits (virtio 1.2, 2.1)
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_NEEDS_RESET = 64;
export const STATUS_FAILED = 128;

// Descriptor flags (virtio 1.2, 2.7.5)
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;

// Feature bits (virtio 1.2, 5.1.3 and 6)
export const F_CSUM = 0;
export const F_GUEST_CSUM = 1;
export const F_MTU = 3;
export const F_GUEST_TSO4 = 7;
export const F_GUEST_TSO6 = 8;
export const F_HOST_TSO4 = 11;
export const F_HOST_TSO6 = 12;
export const F_MAC = 5;
export const F_MRG_RXBUF = 15;
export const F_STATUS = 16;
export const F_INDIRECT_DESC = 28;
export const F_EVENT_IDX = 29;
export const F_VERSION_1 = 32;

// Network link status (virtio 1.2, 5.1.4)
export const NET_S_LINK_UP = 1;

/** Feature set as two u32 words, so nothing on the data path needs BigInt. */
export interface Features {
  lo: number;
  hi: number;
}

export const hasFeature = (f: Features, bit: number): boolean =>
  bit < 32 ? ((f.lo >>> bit) & 1) === 1 : ((f.hi >>> (bit - 32)) & 1) === 1;

export function features(...bits: number[]): Features {
  let lo = 0;
  let hi = 0;
  for (const b of bits) {
    if (b < 32) lo |= 1 << b;
    else hi |= 1 << (b - 32);
  }
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

/** virtio 1.2, 2.7.10: should the other side be notified, given its event index? */
export const vringNeedEvent = (eventIdx: number, newIdx: number, oldIdx: number): boolean =>
  ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);

/** The 12-byte virtio_net_hdr_v1 (virtio 1.2, 5.1.6). */
export const NET_HDR_BYTES = 12;
export const NET_HDR_F_NEEDS_CSUM = 1;
export const NET_HDR_F_DATA_VALID = 2;
export const NET_HDR_GSO_NONE = 0;
export const NET_HDR_GSO_TCPV4 = 1;
export const NET_HDR_GSO_TCPV6 = 4;
/** Largest frame a GSO header may describe: an IP datagram of 64 KiB plus Ethernet and VLAN headers. */
export const MAX_GSO_FRAME = 65535 + 18;
