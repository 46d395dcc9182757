/** STUN/TURN numbers from RFC 8489 §18 and RFC 8656 §18. */

/** RFC 8489 §5: fixed magic cookie. */
export const MAGIC_COOKIE = 0x2112a442;
/** RFC 8489 §5: header size. */
export const HEADER_SIZE = 20;
/** Largest STUN message representable (16-bit length field). */
export const STUN_MAX_SIZE = HEADER_SIZE + 0xffff;
/** Default decoder cap on message size; a UDP datagram cannot be larger anyway. */
export const DEFAULT_MAX_MESSAGE_SIZE = 65_535;
/** Decoder cap on attribute count; real messages carry < 20. */
export const MAX_ATTRIBUTES = 64;
/** RFC 8489 §14.3/14.9/14.10: USERNAME < 513 bytes, REALM/NONCE < 763 bytes; SOFTWARE < 763. */
export const MAX_USERNAME_BYTES = 513;
export const MAX_REALM_BYTES = 763;
export const MAX_NONCE_BYTES = 763;
export const MAX_SOFTWARE_BYTES = 763;
export const MAX_REASON_BYTES = 763;
/** RFC 8489 §14.7: XOR of CRC-32 with "STUN". */
export const FINGERPRINT_XOR = 0x5354554e;

/** STUN message classes (RFC 8489 §5). */
export const StunClass = {
  Request: 0,
  Indication: 1,
  SuccessResponse: 2,
  ErrorResponse: 3,
} as const;
export type StunClass = (typeof StunClass)[keyof typeof StunClass];

/** Methods (RFC 8489 §18.2, RFC 8656 §17). */
export const StunMethod = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
} as const;

/** Attribute types (RFC 8489 §18.3, RFC 8656 §18, RFC 5245 ICE). */
export const Attr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  DontFragment: 0x001a,
  MessageIntegritySha256: 0x001c,
  PasswordAlgorithm: 0x001d,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  ReservationToken: 0x0022,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  AdditionalAddressFamily: 0x8000,
  AddressErrorCode: 0x8001,
  PasswordAlgorithms: 0x8002,
  AlternateDomain: 0x8003,
  Icmp: 0x8004,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
  ResponseOrigin: 0x802b,
  OtherAddress: 0x802c,
} as const;

/** STUN/TURN error codes with their RFC reason phrases. */
export const ErrorCodes = {
  TryAlternate: 300,
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  UnknownAttribute: 420,
  AllocationMismatch: 437,
  StaleNonce: 438,
  AddressFamilyNotSupported: 440,
  WrongCredentials: 441,
  UnsupportedTransportProtocol: 442,
  PeerAddressFamilyMismatch: 443,
  AllocationQuotaReached: 486,
  ServerError: 500,
  InsufficientCapacity: 508,
} as const;

/** Default reason phrases. */
export const ERROR_REASONS: Readonly<Record<number, string>> = {
  300: 'Try Alternate',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  420: 'Unknown Attribute',
  437: 'Allocation Mismatch',
  438: 'Stale Nonce',
  440: 'Address Family not Supported',
  441: 'Wrong Credentials',
  442: 'Unsupported Transport Protocol',
  443: 'Peer Address Family Mismatch',
  486: 'Allocation Quota Reached',
  500: 'Server Error',
  508: 'Insufficient Capacity',
};

/** Lowest bindable channel number. */
export const CHANNEL_MIN = 0x4000;
/**
 * Highest channel number accepted. RFC 8656 §12 narrowed the range to 0x4000–0x4FFF, but RFC 5766
 * allowed up to 0x7FFF and coturn's clients (turnutils_uclient) still pick from that range, so we
 * accept it for interop. Encoders may use {@link CHANNEL_MAX_RFC8656} to stay strict.
 */
export const CHANNEL_MAX = 0x7fff;
/** RFC 8656 §12 upper bound. */
export const CHANNEL_MAX_RFC8656 = 0x4fff;
/** REQUESTED-TRANSPORT protocol number for UDP. */
export const TRANSPORT_UDP = 17;

/** Composes the 14-bit message type from method and class (RFC 8489 §5, figure 3). */
export function messageType(method: number, cls: StunClass): number {
  return (
    (method & 0x000f) |
    ((method & 0x0070) << 1) |
    ((method & 0x0f80) << 2) |
    ((cls & 1) << 4) |
    ((cls & 2) << 7)
  );
}

/** Splits a message type into method and class. */
export function splitMessageType(type: number): { method: number; cls: StunClass } {
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = (((type >> 4) & 1) | ((type >> 7) & 2)) as StunClass;
  return { method, cls };
}
