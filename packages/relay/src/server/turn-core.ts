/**
 * The relay's pure handlers (RFC 8489 Binding, RFC 8656 Allocate, Refresh, CreatePermission,
 * ChannelBind, Send indication): a STUN datagram from a client, plus the relay's state, goes in; the
 * {@link RelayAction}s the socket shell must perform come out (send these bytes to this client or
 * peer, bind a relay socket, close one, end a TCP connection). Time, randomness, hashes, the REST
 * credential check and the SSRF guard are injected, and nothing here imports node:, so every control
 * path is testable without sockets (test/turn-core.test.ts).
 *
 * The data path is not here as actions: relaying ChannelData must not allocate per packet, so the
 * shell reads the allocation's maps directly ({@link TurnCore.udpAllocation}, `Allocation.channels`,
 * `Allocation.take`) and only asks the core to encode Data indications.
 */
import { decodeXorAddress, encodeXorAddress, type TransportAddress } from '../codec/address.js';
import {
  decodeChannelNumber,
  decodeEvenPort,
  decodeRequestedAddressFamily,
  decodeRequestedTransport,
  decodeString,
  decodeU32,
  encodeErrorCode,
  encodeString,
  encodeU32,
  encodeUnknownAttributes,
  isValidChannelNumber,
} from '../codec/attributes.js';
import {
  Attr,
  ErrorCodes,
  MAX_NONCE_BYTES,
  MAX_REALM_BYTES,
  MAX_USERNAME_BYTES,
  StunClass,
  StunMethod,
  TRANSPORT_UDP,
} from '../codec/constants.js';
import { StunDecodeError } from '../codec/errors.js';
import { type StunCrypto, timingSafeEqualBytes } from '../codec/hashes.js';
import {
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  getAttributes,
  longTermKey,
  type StunAttribute,
  type StunMessage,
  verifyIntegrity,
} from '../codec/message.js';
import type { VerifyResult } from '../credentials.js';
import {
  Allocation,
  CHANNEL_LIFETIME_MS,
  type Channel,
  type ClientLink,
  PERMISSION_LIFETIME_MS,
  type Permission,
} from './allocation.js';
import type { RelayMetrics } from './metrics.js';
import type { ResolvedOptions } from './options.js';

/** How long an EVEN-PORT R-bit reservation is held (RFC 8656 §7.2). */
export const RESERVATION_LIFETIME_MS = 30_000;

/** Attribute types we understand or deliberately ignore; others < 0x8000 in a request get 420. */
const KNOWN_ATTRIBUTES = new Set<number>(Object.values(Attr));

/** What the core needs from its environment. The Node shell passes node:crypto and PeerGuard. */
export interface TurnCoreDeps {
  /** HMACs and MD5 for MESSAGE-INTEGRITY, long-term keys and nonces. */
  readonly crypto: StunCrypto;
  /** Cryptographically random bytes (nonce key, transaction IDs, reservation tokens). */
  randomBytes(n: number): Uint8Array;
  /** TURN REST username check (coturn-compatible), e.g. {@link verifyTurnCredentials}. */
  verifyRest(secret: string, username: string, opts: { nowMs: number; separator: string }): VerifyResult;
  /** The SSRF guard: may the relay send to this peer (IP and port)? */
  isPeerAllowed(address: string, family: 4 | 6, port: number): boolean;
  /**
   * Is this one of the relay's own addresses (review R6)? Channels to one are flagged so the data path
   * checks them again per packet. Default: none is.
   */
  isSelfAddress?(address: string, family: 4 | 6): boolean;
}

/** How the shell must bind the relay socket of a new allocation. */
export type RelayBindMode =
  | { readonly kind: 'any' }
  | { readonly kind: 'even'; readonly reserve: boolean }
  | { readonly kind: 'reserved'; readonly token: string };

/** A pending Allocate: the shell binds a socket, then calls relayBound or relayBindFailed with it. */
export interface RelayBind {
  readonly allocation: Allocation;
  readonly request: StunMessage;
  readonly key: Uint8Array;
  readonly family: 4 | 6;
  /** Address the relay socket binds to. */
  readonly host: string;
  readonly mode: RelayBindMode;
}

/** Something the socket shell must do. */
export type RelayAction =
  | { readonly type: 'send-client'; readonly link: ClientLink; readonly data: Uint8Array }
  | {
      readonly type: 'send-peer';
      readonly allocation: Allocation;
      readonly address: string;
      readonly port: number;
      readonly data: Uint8Array;
    }
  | { readonly type: 'bind-relay'; readonly bind: RelayBind }
  /** Close the allocation's relay socket (if it is bound and ready). */
  | { readonly type: 'close-relay'; readonly allocation: Allocation }
  /** End the TCP/TLS connection (an allocation over TCP ends with its connection, RFC 8656 §7). */
  | { readonly type: 'close-client'; readonly link: ClientLink }
  /** Close the socket held for this reservation token. */
  | { readonly type: 'drop-reservation'; readonly token: string };

interface AuthOk {
  readonly username: string;
  readonly identity: string;
  readonly key: Uint8Array;
}

function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** base64url without padding (RFC 4648 §5); `b.length` a multiple of 3 gives no partial group. */
function base64url(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]!;
    if (i + 1 < b.length) s += B64URL[(n >> 6) & 63]!;
    if (i + 2 < b.length) s += B64URL[n & 63]!;
  }
  return s;
}

/** The relay's state and its pure handlers. One per RelayServer. */
export class TurnCore {
  /** UDP client 5-tuple: address -> port -> allocation (read by the shell's fast path). */
  private readonly udpAllocs = new Map<string, Map<number, Allocation>>();
  private readonly allocations = new Set<Allocation>();
  private readonly perUser = new Map<string, number>();
  private readonly perIp = new Map<string, number>();
  /** EVEN-PORT reservations: token (hex) -> expiry. The shell holds the sockets. */
  private readonly reservations = new Map<string, number>();
  /** Live relayed ports: port (+65536 for IPv6) -> allocation, for the relay-to-relay rule. */
  private readonly relayPorts = new Map<number, Allocation>();
  private readonly nonceKey: Uint8Array;
  private readonly tidPrefix: Uint8Array;
  private tidCounter = 0;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly deps: TurnCoreDeps,
    readonly metrics: RelayMetrics,
  ) {
    this.nonceKey = deps.randomBytes(32);
    this.tidPrefix = deps.randomBytes(8);
  }

  /** Number of live allocations. */
  get allocationCount(): number {
    return this.allocations.size;
  }

  /** Live allocations (for the shell's shutdown). */
  liveAllocations(): Allocation[] {
    return [...this.allocations];
  }

  /** Is `port` the relayed port of a live allocation of this relay (its relayed transport address)? */
  isLiveRelayPort(port: number, family: 4 | 6): boolean {
    return this.relayPorts.has(family === 6 ? port + 65_536 : port);
  }

  /** The allocation of a UDP client 5-tuple: the fast path's lookup (two Map gets, no allocation). */
  udpAllocation(address: string, port: number): Allocation | undefined {
    return this.udpAllocs.get(address)?.get(port);
  }

  /** The allocation of a client (UDP 5-tuple or TCP connection). */
  findAllocation(link: ClientLink): Allocation | undefined {
    if (link.tcp) return link.tcp.allocation;
    return this.udpAllocs.get(link.address)?.get(link.port);
  }

  // ---------------------------------------------------------------- entry points

  /** A STUN message (not ChannelData) from a client. Never throws for bad input. */
  handleStun(buf: Uint8Array, link: ClientLink): RelayAction[] {
    const out: RelayAction[] = [];
    let msg: StunMessage;
    try {
      msg = decodeStunMessage(buf, { maxSize: this.opts.maxPacketSize + 20 });
    } catch {
      this.metrics.malformedDropped++;
      return out;
    }
    try {
      if (msg.cls === StunClass.Request) {
        this.metrics.stunRequests++;
        this.onRequest(msg, link, out);
      } else if (msg.cls === StunClass.Indication && msg.method === StunMethod.Send) {
        this.onSendIndication(msg, link, out);
      }
      // Responses and other indications from clients are ignored.
    } catch (err) {
      if (err instanceof StunDecodeError) {
        this.metrics.malformedDropped++;
        if (msg.cls === StunClass.Request) this.sendError(out, msg, link, ErrorCodes.BadRequest);
      } else {
        this.metrics.internalErrors++;
      }
    }
    return out;
  }

  /**
   * The relay socket of `bind` is bound on `port`; `reserved` when the next port was bound too (EVEN-PORT
   * with R). Returns the Allocate success response to send and, with `reserved`, the RESERVATION-TOKEN
   * under which the shell must keep the second socket. Undefined when the allocation went away
   * meanwhile: the shell closes what it bound.
   */
  relayBound(
    bind: RelayBind,
    port: number,
    reserved = false,
  ): { actions: RelayAction[]; token?: string } | undefined {
    const alloc = bind.allocation;
    if (alloc.closed) return undefined;
    const o = this.opts;
    const now = o.clock.now();
    alloc.relayed = {
      family: bind.family,
      address: bind.family === 6 ? o.externalAddress6! : o.externalAddress,
      port,
    };
    alloc.ready = true;
    this.relayPorts.set(bind.family === 6 ? port + 65_536 : port, alloc);
    const req = bind.request;
    const attrs: StunAttribute[] = [
      { type: Attr.XorRelayedAddress, value: encodeXorAddress(alloc.relayed, req.transactionId) },
      { type: Attr.Lifetime, value: encodeU32(Math.round((alloc.expiresAt - now) / 1000)) },
      { type: Attr.XorMappedAddress, value: this.mappedAddress(req, alloc.link) },
    ];
    let token: string | undefined;
    if (reserved) {
      const t = this.deps.randomBytes(8);
      token = hex(t);
      this.reservations.set(token, now + RESERVATION_LIFETIME_MS);
      attrs.push({ type: Attr.ReservationToken, value: t });
    }
    const actions: RelayAction[] = [];
    alloc.allocateResponse = this.reply(actions, req, alloc.link, StunClass.SuccessResponse, attrs, bind.key);
    return token === undefined ? { actions } : { actions, token };
  }

  /** The relay socket of `bind` could not be bound: drop the allocation, answer 508. */
  relayBindFailed(bind: RelayBind): RelayAction[] {
    const out: RelayAction[] = [];
    this.destroy(out, bind.allocation, false);
    this.sendError(out, bind.request, bind.allocation.link, ErrorCodes.InsufficientCapacity, bind.key);
    return out;
  }

  /** A TCP/TLS client connection closed: its allocation ends with it. */
  clientClosed(link: ClientLink): RelayAction[] {
    const out: RelayAction[] = [];
    const a = link.tcp?.allocation;
    if (a) this.destroy(out, a, false);
    return out;
  }

  /** Expires allocations, permissions, channels and reservations. */
  sweep(): RelayAction[] {
    const out: RelayAction[] = [];
    const now = this.opts.clock.now();
    for (const a of this.allocations) {
      if (a.expiresAt <= now) {
        this.metrics.allocationsExpired++;
        this.destroy(out, a, true);
      } else a.prune(now);
    }
    for (const [token, expiresAt] of this.reservations) {
      if (expiresAt <= now) {
        this.reservations.delete(token);
        out.push({ type: 'drop-reservation', token });
      }
    }
    return out;
  }

  /** Ends every allocation and reservation (server shutdown). */
  closeAll(): RelayAction[] {
    const out: RelayAction[] = [];
    for (const a of [...this.allocations]) this.destroy(out, a, false);
    for (const token of this.reservations.keys()) out.push({ type: 'drop-reservation', token });
    this.reservations.clear();
    return out;
  }

  /**
   * Peer -> client without a channel: the Data indication (RFC 8656 §10.3) carrying `data` from
   * `address`:`port`. The caller already checked the permission and the bucket.
   */
  dataIndication(alloc: Allocation, address: string, port: number, data: Uint8Array): Uint8Array {
    const tid = this.nextTid();
    return encodeStunMessage({
      method: StunMethod.Data,
      cls: StunClass.Indication,
      transactionId: tid,
      attributes: [
        {
          type: Attr.XorPeerAddress,
          value: encodeXorAddress({ family: alloc.family, address, port }, tid),
        },
        { type: Attr.Data, value: data },
      ],
    });
  }

  // ---------------------------------------------------------------- requests

  private onRequest(req: StunMessage, link: ClientLink, out: RelayAction[]): void {
    const unknown: number[] = [];
    for (const a of req.attributes)
      if (a.type < 0x8000 && !KNOWN_ATTRIBUTES.has(a.type)) unknown.push(a.type);
    if (unknown.length > 0) {
      this.sendError(out, req, link, ErrorCodes.UnknownAttribute, undefined, [
        { type: Attr.UnknownAttributes, value: encodeUnknownAttributes(unknown) },
      ]);
      return;
    }
    switch (req.method) {
      case StunMethod.Binding:
        this.respond(out, req, link, [{ type: Attr.XorMappedAddress, value: this.mappedAddress(req, link) }]);
        return;
      case StunMethod.Allocate:
        this.onAllocate(req, link, out);
        return;
      case StunMethod.Refresh:
        this.onRefresh(req, link, out);
        return;
      case StunMethod.CreatePermission:
        this.onCreatePermission(req, link, out);
        return;
      case StunMethod.ChannelBind:
        this.onChannelBind(req, link, out);
        return;
      default:
        this.sendError(out, req, link, ErrorCodes.BadRequest);
    }
  }

  private mappedAddress(req: StunMessage, link: ClientLink): Uint8Array {
    return encodeXorAddress(
      { family: link.family, address: link.address, port: link.port },
      req.transactionId,
    );
  }

  private respond(
    out: RelayAction[],
    req: StunMessage,
    link: ClientLink,
    attributes: StunAttribute[],
    key?: Uint8Array,
  ): void {
    this.reply(out, req, link, StunClass.SuccessResponse, attributes, key);
  }

  private sendError(
    out: RelayAction[],
    req: StunMessage,
    link: ClientLink,
    code: number,
    key?: Uint8Array,
    extra: StunAttribute[] = [],
  ): void {
    if (code === ErrorCodes.AllocationQuotaReached || code === ErrorCodes.InsufficientCapacity) {
      this.metrics.quotaRejected++;
    }
    this.reply(
      out,
      req,
      link,
      StunClass.ErrorResponse,
      [{ type: Attr.ErrorCode, value: encodeErrorCode(code) }, ...extra],
      key,
    );
  }

  /**
   * Encode a response to `req` (same method and transaction) and queue it for the client. SOFTWARE
   * goes only on integrity-protected answers: an unauthenticated request (a Binding, the first
   * Allocate) can carry a spoofed source, so its answer is kept small (review R6: reflection).
   */
  private reply(
    out: RelayAction[],
    req: StunMessage,
    link: ClientLink,
    cls: StunClass,
    attributes: StunAttribute[],
    key?: Uint8Array,
  ): Uint8Array {
    if (this.opts.software && key !== undefined)
      attributes.push({ type: Attr.Software, value: encodeString(this.opts.software, 763) });
    const data = encodeStunMessage(
      { method: req.method, cls, transactionId: req.transactionId, attributes },
      { integrityKey: key, crypto: this.deps.crypto, fingerprint: req.hasFingerprint },
    );
    out.push({ type: 'send-client', link, data });
    return data;
  }

  private nextTid(): Uint8Array {
    const t = new Uint8Array(12);
    t.set(this.tidPrefix, 0);
    this.tidCounter = (this.tidCounter + 1) >>> 0;
    new DataView(t.buffer).setUint32(8, this.tidCounter);
    return t;
  }

  // ---------------------------------------------------------------- authentication

  private nonceMac(exp: string): string {
    return base64url(this.deps.crypto.hmacSha256(this.nonceKey, [encodeString(exp)]).subarray(0, 12));
  }

  /**
   * `<expiry, seconds, base 36>.<first 12 bytes of HMAC-SHA256(nonceKey, expiry), base64url>`:
   * stateless, unforgeable, and short (23 characters), since it goes in the 401 that answers an
   * unauthenticated Allocate (review R6: reflection). The nonce is opaque to clients and takes no
   * part in the long-term key, so credentials are unchanged.
   */
  private makeNonce(now: number): string {
    const exp = Math.ceil((now + this.opts.nonceLifetime * 1000) / 1000).toString(36);
    return `${exp}.${this.nonceMac(exp)}`;
  }

  private nonceValid(nonce: string, now: number): boolean {
    const dot = nonce.indexOf('.');
    if (dot <= 0 || dot > 12) return false;
    const exp = nonce.slice(0, dot);
    const mac = encodeString(nonce.slice(dot + 1));
    const want = encodeString(this.nonceMac(exp));
    if (!timingSafeEqualBytes(mac, want)) return false;
    return Number.parseInt(exp, 36) * 1000 > now;
  }

  private challenge(out: RelayAction[], req: StunMessage, link: ClientLink, code: 401 | 438): void {
    if (code === 401) this.metrics.unauthorized++;
    else this.metrics.staleNonce++;
    this.sendError(out, req, link, code, undefined, [
      { type: Attr.Realm, value: encodeString(this.opts.realm) },
      { type: Attr.Nonce, value: encodeString(this.makeNonce(this.opts.clock.now())) },
    ]);
  }

  /** RFC 8489 §9.2.4 server-side long-term credential checks. Queues the error itself on failure. */
  private authenticate(req: StunMessage, link: ClientLink, out: RelayAction[]): AuthOk | undefined {
    if (req.integrityOffset === -1 && req.integritySha256Offset === -1) {
      this.challenge(out, req, link, 401);
      return undefined;
    }
    const u = getAttribute(req, Attr.Username);
    const r = getAttribute(req, Attr.Realm);
    const n = getAttribute(req, Attr.Nonce);
    if (!u || !r || !n) {
      this.sendError(out, req, link, ErrorCodes.BadRequest);
      return undefined;
    }
    const username = decodeString(u, MAX_USERNAME_BYTES);
    const realm = decodeString(r, MAX_REALM_BYTES);
    const nonce = decodeString(n, MAX_NONCE_BYTES);
    const now = this.opts.clock.now();
    if (!this.nonceValid(nonce, now)) {
      this.challenge(out, req, link, 438);
      return undefined;
    }
    if (realm !== this.opts.realm) {
      this.challenge(out, req, link, 401);
      return undefined;
    }
    let password: string | undefined;
    let identity = username;
    if (Object.hasOwn(this.opts.users, username)) {
      password = this.opts.users[username];
    } else if (this.opts.authSecret) {
      const v = this.deps.verifyRest(this.opts.authSecret, username, {
        nowMs: now,
        separator: this.opts.restSeparator,
      });
      if (v.ok) {
        password = v.password;
        identity = v.id === '' ? username : `rest:${v.id}`;
      } else if (v.reason === 'expired') {
        this.metrics.expiredCredentials++;
      }
    }
    if (password === undefined) {
      this.challenge(out, req, link, 401);
      return undefined;
    }
    const key = longTermKey(username, realm, password, this.deps.crypto);
    if (!verifyIntegrity(req, key, this.deps.crypto)) {
      this.challenge(out, req, link, 401);
      return undefined;
    }
    return { username, identity, key };
  }

  // ---------------------------------------------------------------- Allocate (RFC 8656 §7.2)

  private lifetimeMs(req: StunMessage): number {
    const v = getAttribute(req, Attr.Lifetime);
    const o = this.opts;
    const asked = v ? decodeU32(v) : o.defaultLifetime;
    return Math.min(Math.max(asked, o.defaultLifetime), o.maxLifetime) * 1000;
  }

  private onAllocate(req: StunMessage, link: ClientLink, out: RelayAction[]) {
    const existing = this.findAllocation(link);
    const tid = hex(req.transactionId);
    if (existing && existing.allocateTid === tid) {
      // Retransmission: resend the cached answer (or nothing while the relay socket is still binding).
      if (existing.allocateResponse) out.push({ type: 'send-client', link, data: existing.allocateResponse });
      return;
    }
    const auth = this.authenticate(req, link, out);
    if (!auth) return;
    const o = this.opts;
    const fail = (code: number) => this.sendError(out, req, link, code, auth.key);
    if (existing) return fail(ErrorCodes.AllocationMismatch);
    const rt = getAttribute(req, Attr.RequestedTransport);
    if (!rt) return fail(ErrorCodes.BadRequest);
    if (decodeRequestedTransport(rt) !== TRANSPORT_UDP) return fail(ErrorCodes.UnsupportedTransportProtocol);
    const token = getAttribute(req, Attr.ReservationToken);
    const evenPort = getAttribute(req, Attr.EvenPort);
    const famAttr = getAttribute(req, Attr.RequestedAddressFamily);
    if (token && (evenPort || famAttr)) return fail(ErrorCodes.BadRequest);
    let family: 4 | 6 = 4;
    if (famAttr) {
      const f = decodeRequestedAddressFamily(famAttr);
      if (f === 0) return fail(ErrorCodes.AddressFamilyNotSupported);
      if (f === 6 && !o.relayHost6) return fail(ErrorCodes.AddressFamilyNotSupported);
      family = f;
    }
    if (this.allocations.size >= o.maxAllocations) return fail(ErrorCodes.InsufficientCapacity);
    if ((this.perUser.get(auth.identity) ?? 0) >= o.maxAllocationsPerUser) {
      return fail(ErrorCodes.AllocationQuotaReached);
    }
    if ((this.perIp.get(link.address) ?? 0) >= o.maxAllocationsPerIp) {
      return fail(ErrorCodes.AllocationQuotaReached);
    }
    let mode: RelayBindMode;
    if (token) {
      const t = hex(token);
      if (!this.reservations.has(t)) return fail(ErrorCodes.InsufficientCapacity);
      this.reservations.delete(t);
      mode = { kind: 'reserved', token: t };
    } else if (evenPort) {
      mode = { kind: 'even', reserve: decodeEvenPort(evenPort).reserve };
    } else {
      mode = { kind: 'any' };
    }
    const now = o.clock.now();
    const alloc = new Allocation(
      link,
      family,
      auth.username,
      auth.identity,
      auth.key,
      tid,
      now + this.lifetimeMs(req),
      o.bytesPerSecond,
      o.burstBytes,
      now,
    );
    this.register(alloc);
    out.push({
      type: 'bind-relay',
      bind: {
        allocation: alloc,
        request: req,
        key: auth.key,
        family,
        host: family === 6 ? o.relayHost6! : o.relayHost,
        mode,
      },
    });
  }

  private register(a: Allocation): void {
    this.allocations.add(a);
    this.perUser.set(a.identity, (this.perUser.get(a.identity) ?? 0) + 1);
    this.perIp.set(a.link.address, (this.perIp.get(a.link.address) ?? 0) + 1);
    if (a.link.tcp) a.link.tcp.allocation = a;
    else {
      let byPort = this.udpAllocs.get(a.link.address);
      if (!byPort) {
        byPort = new Map();
        this.udpAllocs.set(a.link.address, byPort);
      }
      byPort.set(a.link.port, a);
    }
    this.metrics.allocationsCreated++;
    this.metrics.allocationsActive = this.allocations.size;
  }

  private destroy(out: RelayAction[], a: Allocation, closeTcp: boolean): void {
    if (a.closed) return;
    a.closed = true;
    this.allocations.delete(a);
    const n = (this.perUser.get(a.identity) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(a.identity);
    else this.perUser.set(a.identity, n);
    const m = (this.perIp.get(a.link.address) ?? 1) - 1;
    if (m <= 0) this.perIp.delete(a.link.address);
    else this.perIp.set(a.link.address, m);
    if (a.link.tcp) {
      if (a.link.tcp.allocation === a) a.link.tcp.allocation = undefined;
      // RFC 8656 §7: an allocation over TCP ends with its connection, and vice versa.
      if (closeTcp) out.push({ type: 'close-client', link: a.link });
    } else {
      const byPort = this.udpAllocs.get(a.link.address);
      if (byPort?.get(a.link.port) === a) {
        byPort.delete(a.link.port);
        if (byPort.size === 0) this.udpAllocs.delete(a.link.address);
      }
    }
    if (a.relayed) {
      const k = a.relayed.family === 6 ? a.relayed.port + 65_536 : a.relayed.port;
      if (this.relayPorts.get(k) === a) this.relayPorts.delete(k);
    }
    out.push({ type: 'close-relay', allocation: a });
    this.metrics.allocationsActive = this.allocations.size;
  }

  /** Authenticated request on an existing, ready allocation of the same user; else queues the error. */
  private ownAllocation(
    req: StunMessage,
    link: ClientLink,
    out: RelayAction[],
  ): { alloc: Allocation; auth: AuthOk } | undefined {
    const auth = this.authenticate(req, link, out);
    if (!auth) return undefined;
    const alloc = this.findAllocation(link);
    if (!alloc?.ready) {
      this.sendError(out, req, link, ErrorCodes.AllocationMismatch, auth.key);
      return undefined;
    }
    if (alloc.username !== auth.username) {
      this.sendError(out, req, link, ErrorCodes.WrongCredentials, auth.key);
      return undefined;
    }
    return { alloc, auth };
  }

  // ---------------------------------------------------------------- Refresh (RFC 8656 §8)

  private onRefresh(req: StunMessage, link: ClientLink, out: RelayAction[]) {
    const own = this.ownAllocation(req, link, out);
    if (!own) return;
    const { alloc, auth } = own;
    const v = getAttribute(req, Attr.Lifetime);
    const asked = v ? decodeU32(v) : this.opts.defaultLifetime;
    if (asked === 0) {
      this.destroy(out, alloc, false);
      this.respond(out, req, link, [{ type: Attr.Lifetime, value: encodeU32(0) }], auth.key);
      return;
    }
    const ms = this.lifetimeMs(req);
    alloc.expiresAt = this.opts.clock.now() + ms;
    this.respond(out, req, link, [{ type: Attr.Lifetime, value: encodeU32(ms / 1000) }], auth.key);
  }

  // ---------------------------------------------------------------- permissions and channels

  /** Validates a peer; returns the error code to send, or 0. */
  private checkPeer(alloc: Allocation, peer: TransportAddress): number {
    if (peer.family !== alloc.family) return ErrorCodes.PeerAddressFamilyMismatch;
    if (!this.deps.isPeerAllowed(peer.address, peer.family, peer.port)) {
      this.metrics.forbiddenPeer++;
      return ErrorCodes.Forbidden;
    }
    return 0;
  }

  private installPermission(alloc: Allocation, ip: string, now: number): Permission {
    let p = alloc.permissions.get(ip);
    if (!p) {
      p = { expiresAt: 0 };
      alloc.permissions.set(ip, p);
    }
    p.expiresAt = now + PERMISSION_LIFETIME_MS;
    // Channels to this IP share the permission object; re-link any that held a pruned one.
    const byPort = alloc.peerChannels.get(ip);
    if (byPort) for (const ch of byPort.values()) ch.permission = p;
    return p;
  }

  private onCreatePermission(req: StunMessage, link: ClientLink, out: RelayAction[]) {
    const own = this.ownAllocation(req, link, out);
    if (!own) return;
    const { alloc, auth } = own;
    const values = getAttributes(req, Attr.XorPeerAddress);
    if (values.length === 0) return this.sendError(out, req, link, ErrorCodes.BadRequest, auth.key);
    const peers = values.map((v) => decodeXorAddress(v, req.transactionId));
    for (const p of peers) {
      const code = this.checkPeer(alloc, p);
      if (code !== 0) return this.sendError(out, req, link, code, auth.key);
    }
    const fresh = new Set(peers.map((p) => p.address).filter((a) => !alloc.permissions.has(a)));
    if (alloc.permissions.size + fresh.size > this.opts.maxPermissionsPerAllocation) {
      return this.sendError(out, req, link, ErrorCodes.InsufficientCapacity, auth.key);
    }
    const now = this.opts.clock.now();
    for (const p of peers) this.installPermission(alloc, p.address, now);
    this.respond(out, req, link, [], auth.key);
  }

  private onChannelBind(req: StunMessage, link: ClientLink, out: RelayAction[]) {
    const own = this.ownAllocation(req, link, out);
    if (!own) return;
    const { alloc, auth } = own;
    const fail = (code: number) => this.sendError(out, req, link, code, auth.key);
    const cn = getAttribute(req, Attr.ChannelNumber);
    const pa = getAttribute(req, Attr.XorPeerAddress);
    if (!cn || !pa) return fail(ErrorCodes.BadRequest);
    const number = decodeChannelNumber(cn);
    if (!isValidChannelNumber(number)) return fail(ErrorCodes.BadRequest);
    const peer = decodeXorAddress(pa, req.transactionId);
    const code = this.checkPeer(alloc, peer);
    if (code !== 0) return fail(code);
    const now = this.opts.clock.now();
    const bound = alloc.channels.get(number);
    const peerBound = alloc.peerChannels.get(peer.address)?.get(peer.port);
    // RFC 8656 §11.2: a channel maps to one peer and a peer to one channel.
    if (bound && (bound.peerAddress !== peer.address || bound.peerPort !== peer.port)) {
      return fail(ErrorCodes.BadRequest);
    }
    if (peerBound && peerBound.number !== number) return fail(ErrorCodes.BadRequest);
    if (!bound && alloc.channels.size >= this.opts.maxChannelsPerAllocation) {
      return fail(ErrorCodes.InsufficientCapacity);
    }
    if (
      !alloc.permissions.has(peer.address) &&
      alloc.permissions.size >= this.opts.maxPermissionsPerAllocation
    ) {
      return fail(ErrorCodes.InsufficientCapacity);
    }
    const permission = this.installPermission(alloc, peer.address, now);
    if (bound) {
      bound.expiresAt = now + CHANNEL_LIFETIME_MS;
      bound.permission = permission;
    } else {
      const ch: Channel = {
        number,
        peerAddress: peer.address,
        peerPort: peer.port,
        peerFamily: peer.family,
        expiresAt: now + CHANNEL_LIFETIME_MS,
        permission,
        selfPeer: this.deps.isSelfAddress?.(peer.address, peer.family) ?? false,
      };
      alloc.channels.set(number, ch);
      let byPort = alloc.peerChannels.get(peer.address);
      if (!byPort) {
        byPort = new Map();
        alloc.peerChannels.set(peer.address, byPort);
      }
      byPort.set(peer.port, ch);
    }
    this.respond(out, req, link, [], auth.key);
  }

  // ---------------------------------------------------------------- Send indication (RFC 8656 §10.2)

  private onSendIndication(msg: StunMessage, link: ClientLink, out: RelayAction[]): void {
    const m = this.metrics;
    const alloc = this.findAllocation(link);
    const pa = getAttribute(msg, Attr.XorPeerAddress);
    const data = getAttribute(msg, Attr.Data);
    if (!alloc?.ready || !pa || !data) {
      m.malformedDropped++;
      return;
    }
    const peer = decodeXorAddress(pa, msg.transactionId);
    if (peer.family !== alloc.family || !this.deps.isPeerAllowed(peer.address, peer.family, peer.port)) {
      m.forbiddenPeer++;
      return;
    }
    const now = this.opts.clock.now();
    const perm = alloc.permissions.get(peer.address);
    if (!perm || perm.expiresAt <= now) {
      m.permissionDropped++;
      return;
    }
    if (!alloc.take(data.length, now)) {
      m.rateLimitedDropped++;
      return;
    }
    out.push({ type: 'send-peer', allocation: alloc, address: peer.address, port: peer.port, data });
    m.relayedToPeer++;
    m.relayedBytes += data.length;
  }
}
