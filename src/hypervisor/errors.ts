/**
 * Control-plane errors (error tier 3): a stable `code` for programs and a message that says what
 * to do. The data path never throws; these come only from calls into the hypervisor.
 */
export type ErrorCode =
  | 'DEVICE_STOPPED'
  | 'DEVICE_FULL'
  | 'BAD_MAC'
  | 'DUPLICATE_MAC'
  | 'BAD_MTU'
  | 'BAD_QUEUE_SIZE'
  | 'BAD_SEGMENT'
  | 'BAD_COALESCE'
  | 'BAD_OPTION'
  | 'NO_SUCH_VIF'
  | 'NO_SUCH_GUEST'
  | 'VIF_ALREADY_GRANTED'
  | 'GUEST_EXITED'
  | 'GUEST_FAILED'
  | 'UPLINK_IN_USE'
  | 'UPLINK_FAILED'
  | 'ENGINE_FAILED'
  | 'DRIVER_DOMAIN_FAILED'
  | 'CONFIG_INVALID'
  | 'NATIVE_MISSING'
  // vhost-user and VM guests (issue 5)
  | 'VM_IMAGE'
  | 'VM_FAILED'
  | 'VHOST_USER'
  // QoS (hypervisor/qos.ts)
  | 'BAD_QOS'
  | 'QOS_OVERCOMMIT'
  | 'QOS_NO_CAPACITY';

export class SvnicError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'SvnicError';
    this.code = code;
  }
}
