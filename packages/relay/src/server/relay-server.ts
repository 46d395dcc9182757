/**
 * Node STUN/TURN relay (RFC 8489 Binding, RFC 8656 TURN with UDP relaying) over UDP, TCP and TLS.
 *
 * Data path: ChannelData from a client is looked up by 5-tuple (address -> port -> allocation, two Map
 * gets, no string building), checked against channel/permission expiry and the allocation's token
 * bucket, and sent from the relay socket with offset/length so the payload is never copied. No crypto
 * runs on the data path. Everything else (STUN requests, Send/Data indications) is the control path.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import {
  createServer as createTcpServer,
  isIPv6,
  type Server as NetServer,
  type Socket as NetSocket,
} from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
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
import { streamFrameSize } from '../codec/channel-data.js';
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
import { RelayConfigError, StunDecodeError } from '../codec/errors.js';
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
import { verifyTurnCredentials } from '../credentials.js';
import {
  Allocation,
  CHANNEL_LIFETIME_MS,
  type Channel,
  type ClientLink,
  PERMISSION_LIFETIME_MS,
  type Permission,
  type TcpConnection,
} from './allocation.js';
import { createMetrics, type RelayMetrics } from './metrics.js';
import { nodeStunCrypto } from './node-crypto.js';
import { type RelayServerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { PeerGuard } from './peer-guard.js';

/** Ports actually bound by {@link RelayServer.start}. */
export interface RelayAddresses {
  readonly udpPort: number | undefined;
  readonly tcpPort: number | undefined;
  readonly tlsPort: number | undefined;
}

/** Attribute types we understand or deliberately ignore; others < 0x8000 in a request get 420. */
const KNOWN_ATTRIBUTES = new Set<number>(Object.values(Attr));
const RESERVATION_LIFETIME_MS = 30_000;

interface AuthOk {
  readonly username: string;
  readonly identity: string;
  readonly key: Uint8Array;
}

interface Reservation {
  readonly socket: UdpSocket;
  readonly port: number;
  readonly expiresAt: number;
}

/**
 * dgram resolves every send's address through `lookup`; the default (dns.lookup) defers each packet
 * to process.nextTick even for IP literals. We only ever send to IP literals (from rinfo or decoded
 * XOR addresses), so answer synchronously — a large per-packet saving on the relay path.
 */
function literalLookup(
  hostname: string,
  _options: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, hostname, hostname.includes(':') ? 6 : 4);
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function tidKey(tid: Uint8Array): string {
  return toBuffer(tid).toString('hex');
}

/** The built-in TURN relay. Create, `start()`, read `metrics`, `close()`. */
export class RelayServer {
  /** Live counters; see {@link RelayMetrics}. */
  readonly metrics: RelayMetrics = createMetrics();
  private opts!: ResolvedOptions;
  private guard!: PeerGuard;
  private udp: UdpSocket | undefined;
  private tcp: NetServer | undefined;
  private tlsServer: NetServer | undefined;
  private readonly tcpConns = new Set<TcpConnection>();
  /** UDP client 5-tuple: address -> port -> allocation. */
  private readonly udpAllocs = new Map<string, Map<number, Allocation>>();
  private readonly allocations = new Set<Allocation>();
  private readonly perUser = new Map<string, number>();
  private readonly reservations = new Map<string, Reservation>();
  private readonly nonceKey = randomBytes(32);
  private readonly tidPrefix = randomBytes(8);
  private tidCounter = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;

  /** Binds the listeners. Rejects with RelayConfigError on bad options, or the socket error. */
  async start(options: RelayServerOptions): Promise<RelayAddresses> {
    if (this.started) throw new RelayConfigError('RelayServer already started');
    this.started = true;
    this.opts = resolveOptions(options);
    this.guard = new PeerGuard(this.opts);
    const o = this.opts;
    let udpPort: number | undefined;
    let tcpPort: number | undefined;
    let tlsPort: number | undefined;
    try {
      if (o.udpPort !== null) {
        const sock = await this.bindUdp(isIPv6(o.host) ? 'udp6' : 'udp4', o.host, o.udpPort);
        sock.on('message', (msg, rinfo) => this.onUdpClientPacket(msg, rinfo));
        this.udp = sock;
        udpPort = sock.address().port;
      }
      if (o.tcpPort !== null) {
        this.tcp = createTcpServer({ noDelay: true }, (s) => this.onTcpConnection(s, 'tcp'));
        tcpPort = await this.listen(this.tcp, o.tcpPort);
      }
      if (o.tls) {
        this.tlsServer = createTlsServer({ cert: o.tls.cert, key: o.tls.key }, (s) =>
          this.onTcpConnection(s, 'tls'),
        );
        tlsPort = await this.listen(this.tlsServer, o.tlsPort);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    if (o.sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), o.sweepIntervalMs);
      this.sweepTimer.unref();
    }
    return { udpPort, tcpPort, tlsPort };
  }

  /** Stops listening, closes every connection and relay socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const a of [...this.allocations]) this.destroyAllocation(a, false);
    for (const r of this.reservations.values()) r.socket.close();
    this.reservations.clear();
    for (const c of this.tcpConns) c.socket.destroy();
    const waits: Promise<void>[] = [];
    if (this.udp) {
      const u = this.udp;
      waits.push(new Promise((res) => u.close(() => res())));
    }
    for (const srv of [this.tcp, this.tlsServer]) {
      if (srv) waits.push(new Promise((res) => srv.close(() => res())));
    }
    await Promise.all(waits);
  }

  /** Expires allocations, permissions, channels and reservations. Runs on a timer; callable from tests. */
  sweep(): void {
    const now = this.opts.clock.now();
    for (const a of this.allocations) {
      if (a.expiresAt <= now) {
        this.metrics.allocationsExpired++;
        this.destroyAllocation(a, true);
      } else a.prune(now);
    }
    for (const [k, r] of this.reservations) {
      if (r.expiresAt <= now) {
        r.socket.close();
        this.reservations.delete(k);
      }
    }
  }

  /** Number of live allocations (for tests and health checks). */
  get allocationCount(): number {
    return this.allocations.size;
  }

  // ---------------------------------------------------------------- sockets

  private bindUdp(type: 'udp4' | 'udp6', host: string, port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type, reuseAddr: false, lookup: literalLookup });
      const onErr = (e: Error) => {
        s.close();
        reject(e);
      };
      s.once('error', onErr);
      s.bind(port, host, () => {
        s.off('error', onErr);
        s.on('error', () => {
          this.metrics.socketErrors++;
        });
        try {
          s.setRecvBufferSize(this.opts.socketBufferSize);
          s.setSendBufferSize(this.opts.socketBufferSize);
        } catch {
          // Kernel limits; the default buffers still work.
        }
        resolve(s);
      });
    });
  }

  private listen(srv: NetServer, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.maxConnections = this.opts.maxTcpConnections;
      srv.listen(port, this.opts.host, () => {
        srv.off('error', reject);
        srv.on('error', () => {
          this.metrics.socketErrors++;
        });
        const a = srv.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  // ---------------------------------------------------------------- UDP clients

  private onUdpClientPacket(msg: Buffer, rinfo: RemoteInfo): void {
    const m = this.metrics;
    m.clientPacketsIn++;
    try {
      if (msg.length > this.opts.maxPacketSize) {
        m.oversizedDropped++;
        return;
      }
      if (msg.length >= 4 && (msg[0]! & 0xc0) === 0x40) {
        // Hot path: ChannelData.
        const alloc = this.udpAllocs.get(rinfo.address)?.get(rinfo.port);
        const len = (msg[2]! << 8) | msg[3]!;
        if (alloc === undefined || 4 + len > msg.length) {
          m.channelDataDropped++;
          return;
        }
        this.relayChannelData(alloc, msg, 4, len);
        return;
      }
      const link: ClientLink = {
        kind: 'udp',
        address: rinfo.address,
        port: rinfo.port,
        family: rinfo.family === 'IPv6' ? 6 : 4,
        tcp: undefined,
      };
      this.onStun(msg, link);
    } catch {
      m.internalErrors++;
    }
  }

  /** Client -> peer for one ChannelData payload at buf[off, off+len). */
  private relayChannelData(alloc: Allocation, buf: Buffer, off: number, len: number): void {
    const ch = alloc.channels.get((buf[off - 4]! << 8) | buf[off - 3]!);
    const now = this.opts.clock.now();
    const m = this.metrics;
    if (ch === undefined || ch.expiresAt <= now || alloc.relaySocket === undefined) {
      m.channelDataDropped++;
      return;
    }
    if (ch.permission.expiresAt <= now) {
      m.permissionDropped++;
      return;
    }
    if (!alloc.take(len, now)) {
      m.rateLimitedDropped++;
      return;
    }
    alloc.relaySocket.send(buf, off, len, ch.peerPort, ch.peerAddress);
    m.relayedToPeer++;
    m.relayedBytes += len;
  }

  // ---------------------------------------------------------------- TCP / TLS clients

  private onTcpConnection(socket: NetSocket, kind: 'tcp' | 'tls'): void {
    const m = this.metrics;
    if (this.closed || socket.remoteAddress === undefined || socket.remotePort === undefined) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const conn: TcpConnection = {
      socket,
      pending: null,
      allocation: undefined,
      link: {
        kind,
        address: socket.remoteAddress,
        port: socket.remotePort,
        family: socket.remoteFamily === 'IPv6' ? 6 : 4,
        tcp: undefined,
      },
    };
    (conn.link as { tcp: TcpConnection | undefined }).tcp = conn;
    this.tcpConns.add(conn);
    m.tcpConnections++;
    const idle = setTimeout(() => {
      if (conn.allocation === undefined) socket.destroy();
    }, this.opts.tcpIdleTimeoutMs);
    idle.unref();
    socket.on('data', (chunk: Buffer) => this.onTcpData(conn, chunk));
    socket.on('error', () => {
      m.socketErrors++;
    });
    socket.on('close', () => {
      clearTimeout(idle);
      this.tcpConns.delete(conn);
      m.tcpConnections--;
      if (conn.allocation) this.destroyAllocation(conn.allocation, false);
    });
  }

  private onTcpData(conn: TcpConnection, chunk: Buffer): void {
    const m = this.metrics;
    try {
      const buf = conn.pending ? Buffer.concat([conn.pending, chunk]) : chunk;
      let off = 0;
      while (buf.length - off >= 4) {
        let size: number;
        try {
          size = streamFrameSize(buf, off);
        } catch {
          m.malformedDropped++;
          conn.socket.destroy();
          return;
        }
        if (size > this.opts.maxPacketSize + 4) {
          m.oversizedDropped++;
          conn.socket.destroy();
          return;
        }
        if (buf.length - off < size) break;
        m.clientPacketsIn++;
        if ((buf[off]! & 0xc0) === 0x40) {
          const alloc = conn.allocation;
          if (alloc === undefined) m.channelDataDropped++;
          else this.relayChannelData(alloc, buf, off + 4, (buf[off + 2]! << 8) | buf[off + 3]!);
        } else {
          this.onStun(buf.subarray(off, off + size), conn.link);
        }
        off += size;
      }
      conn.pending = off < buf.length ? buf.subarray(off) : null;
      if (conn.pending && conn.pending.length > this.opts.maxPacketSize + 4) {
        m.oversizedDropped++;
        conn.socket.destroy();
      }
    } catch {
      m.internalErrors++;
    }
  }

  private sendToClient(link: ClientLink, buf: Uint8Array): void {
    const c = link.tcp;
    if (c === undefined) {
      this.udp?.send(buf, 0, buf.length, link.port, link.address);
      return;
    }
    if (c.socket.destroyed) return;
    if (c.socket.writableLength > this.opts.maxTcpBufferedBytes) {
      this.metrics.backpressureDropped++;
      return;
    }
    c.socket.write(buf);
  }

  // ---------------------------------------------------------------- peers

  private onPeerPacket(alloc: Allocation, msg: Buffer, rinfo: RemoteInfo): void {
    const m = this.metrics;
    try {
      const now = this.opts.clock.now();
      const perm = alloc.permissions.get(rinfo.address);
      if (perm === undefined || perm.expiresAt <= now) {
        m.permissionDropped++;
        return;
      }
      const len = msg.length;
      if (len > this.opts.maxPacketSize) {
        m.oversizedDropped++;
        return;
      }
      if (!alloc.take(len, now)) {
        m.rateLimitedDropped++;
        return;
      }
      const ch = alloc.peerChannels.get(rinfo.address)?.get(rinfo.port);
      let out: Uint8Array;
      if (ch !== undefined && ch.expiresAt > now) {
        const stream = alloc.link.tcp !== undefined;
        const size = stream ? 4 + ((len + 3) & ~3) : 4 + len;
        const b = Buffer.allocUnsafe(size);
        b[0] = ch.number >> 8;
        b[1] = ch.number & 0xff;
        b[2] = len >> 8;
        b[3] = len & 0xff;
        msg.copy(b, 4);
        for (let i = 4 + len; i < size; i++) b[i] = 0;
        out = b;
      } else {
        const tid = this.nextTid();
        out = encodeStunMessage({
          method: StunMethod.Data,
          cls: StunClass.Indication,
          transactionId: tid,
          attributes: [
            {
              type: Attr.XorPeerAddress,
              value: encodeXorAddress(
                { family: alloc.family, address: rinfo.address, port: rinfo.port },
                tid,
              ),
            },
            { type: Attr.Data, value: msg },
          ],
        });
      }
      this.sendToClient(alloc.link, out);
      m.relayedToClient++;
      m.relayedBytes += len;
    } catch {
      m.internalErrors++;
    }
  }

  private nextTid(): Uint8Array {
    const t = Buffer.allocUnsafe(12);
    this.tidPrefix.copy(t, 0);
    this.tidCounter = (this.tidCounter + 1) >>> 0;
    t.writeUInt32BE(this.tidCounter, 8);
    return t;
  }

  // ---------------------------------------------------------------- STUN control path

  private onStun(buf: Buffer, link: ClientLink): void {
    let msg: StunMessage;
    try {
      msg = decodeStunMessage(buf, { maxSize: this.opts.maxPacketSize + 20 });
    } catch {
      this.metrics.malformedDropped++;
      return;
    }
    try {
      if (msg.cls === StunClass.Request) {
        this.metrics.stunRequests++;
        this.onRequest(msg, link);
      } else if (msg.cls === StunClass.Indication && msg.method === StunMethod.Send) {
        this.onSendIndication(msg, link);
      }
      // Responses and other indications from clients are ignored.
    } catch (err) {
      if (err instanceof StunDecodeError) {
        this.metrics.malformedDropped++;
        if (msg.cls === StunClass.Request) this.sendError(msg, link, ErrorCodes.BadRequest);
      } else {
        this.metrics.internalErrors++;
      }
    }
  }

  private onRequest(req: StunMessage, link: ClientLink): void {
    const unknown: number[] = [];
    for (const a of req.attributes)
      if (a.type < 0x8000 && !KNOWN_ATTRIBUTES.has(a.type)) unknown.push(a.type);
    if (unknown.length > 0) {
      this.sendError(req, link, ErrorCodes.UnknownAttribute, undefined, [
        { type: Attr.UnknownAttributes, value: encodeUnknownAttributes(unknown) },
      ]);
      return;
    }
    switch (req.method) {
      case StunMethod.Binding:
        this.respond(req, link, [{ type: Attr.XorMappedAddress, value: this.mappedAddress(req, link) }]);
        return;
      case StunMethod.Allocate:
        void this.onAllocate(req, link).catch(() => {
          this.metrics.internalErrors++;
        });
        return;
      case StunMethod.Refresh:
        this.onRefresh(req, link);
        return;
      case StunMethod.CreatePermission:
        this.onCreatePermission(req, link);
        return;
      case StunMethod.ChannelBind:
        this.onChannelBind(req, link);
        return;
      default:
        this.sendError(req, link, ErrorCodes.BadRequest);
    }
  }

  private mappedAddress(req: StunMessage, link: ClientLink): Uint8Array {
    return encodeXorAddress(
      { family: link.family, address: link.address, port: link.port },
      req.transactionId,
    );
  }

  private findAllocation(link: ClientLink): Allocation | undefined {
    if (link.tcp) return link.tcp.allocation;
    return this.udpAllocs.get(link.address)?.get(link.port);
  }

  private respond(
    req: StunMessage,
    link: ClientLink,
    attributes: StunAttribute[],
    key?: Uint8Array,
  ): Uint8Array {
    return this.reply(req, link, StunClass.SuccessResponse, attributes, key);
  }

  private sendError(
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
      req,
      link,
      StunClass.ErrorResponse,
      [{ type: Attr.ErrorCode, value: encodeErrorCode(code) }, ...extra],
      key,
    );
  }

  /** Encode a response to `req` (same method and transaction, SOFTWARE added) and send it to the client. */
  private reply(
    req: StunMessage,
    link: ClientLink,
    cls: StunClass,
    attributes: StunAttribute[],
    key?: Uint8Array,
  ): Uint8Array {
    if (this.opts.software)
      attributes.push({ type: Attr.Software, value: encodeString(this.opts.software, 763) });
    const out = encodeStunMessage(
      { method: req.method, cls, transactionId: req.transactionId, attributes },
      { integrityKey: key, crypto: nodeStunCrypto, fingerprint: req.hasFingerprint },
    );
    this.sendToClient(link, out);
    return out;
  }

  // ---------------------------------------------------------------- authentication

  private makeNonce(now: number): string {
    const exp = (now + this.opts.nonceLifetime * 1000).toString(16);
    const mac = createHmac('sha256', this.nonceKey).update(exp).digest('base64url').slice(0, 22);
    return `${exp}.${mac}`;
  }

  private nonceValid(nonce: string, now: number): boolean {
    const dot = nonce.indexOf('.');
    if (dot <= 0) return false;
    const exp = nonce.slice(0, dot);
    const mac = Buffer.from(nonce.slice(dot + 1));
    const want = Buffer.from(
      createHmac('sha256', this.nonceKey).update(exp).digest('base64url').slice(0, 22),
    );
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) return false;
    return Number.parseInt(exp, 16) > now;
  }

  private challenge(req: StunMessage, link: ClientLink, code: 401 | 438): void {
    if (code === 401) this.metrics.unauthorized++;
    else this.metrics.staleNonce++;
    this.sendError(req, link, code, undefined, [
      { type: Attr.Realm, value: encodeString(this.opts.realm) },
      { type: Attr.Nonce, value: encodeString(this.makeNonce(this.opts.clock.now())) },
    ]);
  }

  /** RFC 8489 §9.2.4 server-side long-term credential checks. Sends the error itself on failure. */
  private authenticate(req: StunMessage, link: ClientLink): AuthOk | undefined {
    if (req.integrityOffset === -1 && req.integritySha256Offset === -1) {
      this.challenge(req, link, 401);
      return undefined;
    }
    const u = getAttribute(req, Attr.Username);
    const r = getAttribute(req, Attr.Realm);
    const n = getAttribute(req, Attr.Nonce);
    if (!u || !r || !n) {
      this.sendError(req, link, ErrorCodes.BadRequest);
      return undefined;
    }
    const username = decodeString(u, MAX_USERNAME_BYTES);
    const realm = decodeString(r, MAX_REALM_BYTES);
    const nonce = decodeString(n, MAX_NONCE_BYTES);
    const now = this.opts.clock.now();
    if (!this.nonceValid(nonce, now)) {
      this.challenge(req, link, 438);
      return undefined;
    }
    if (realm !== this.opts.realm) {
      this.challenge(req, link, 401);
      return undefined;
    }
    let password: string | undefined;
    let identity = username;
    if (Object.hasOwn(this.opts.users, username)) {
      password = this.opts.users[username];
    } else if (this.opts.authSecret) {
      const v = verifyTurnCredentials(this.opts.authSecret, username, {
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
      this.challenge(req, link, 401);
      return undefined;
    }
    const key = longTermKey(username, realm, password, nodeStunCrypto);
    if (!verifyIntegrity(req, key, nodeStunCrypto)) {
      this.challenge(req, link, 401);
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

  private async onAllocate(req: StunMessage, link: ClientLink) {
    const existing = this.findAllocation(link);
    const tid = tidKey(req.transactionId);
    if (existing && existing.allocateTid === tid) {
      // Retransmission: resend the cached answer (or nothing while the relay socket is still binding).
      if (existing.allocateResponse) this.sendToClient(link, existing.allocateResponse);
      return;
    }
    const auth = this.authenticate(req, link);
    if (!auth) return;
    const o = this.opts;
    const fail = (code: number) => this.sendError(req, link, code, auth.key);
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
    this.registerAllocation(alloc);
    let reservedToken: Uint8Array | undefined;
    try {
      if (token) {
        const r = this.reservations.get(toBuffer(token).toString('hex'));
        if (!r) throw new RelayConfigError('unknown reservation token');
        this.reservations.delete(toBuffer(token).toString('hex'));
        alloc.relaySocket = r.socket;
      } else if (evenPort) {
        const { reserve } = decodeEvenPort(evenPort);
        const [sock, next] = await this.bindEvenPort(family, reserve);
        alloc.relaySocket = sock;
        if (next) {
          reservedToken = randomBytes(8);
          this.reservations.set(toBuffer(reservedToken).toString('hex'), {
            socket: next,
            port: next.address().port,
            expiresAt: now + RESERVATION_LIFETIME_MS,
          });
        }
      } else {
        alloc.relaySocket = await this.bindUdp(
          family === 6 ? 'udp6' : 'udp4',
          family === 6 ? o.relayHost6! : o.relayHost,
          0,
        );
      }
    } catch {
      this.destroyAllocation(alloc, false);
      if (!this.closed) fail(ErrorCodes.InsufficientCapacity);
      return;
    }
    const sock = alloc.relaySocket;
    if (this.closed || alloc.closed) {
      sock.close();
      return;
    }
    sock.on('message', (msg, rinfo) => this.onPeerPacket(alloc, msg, rinfo));
    alloc.relayed = {
      family,
      address: family === 6 ? o.externalAddress6! : o.externalAddress,
      port: sock.address().port,
    };
    alloc.ready = true;
    const attrs: StunAttribute[] = [
      { type: Attr.XorRelayedAddress, value: encodeXorAddress(alloc.relayed, req.transactionId) },
      { type: Attr.Lifetime, value: encodeU32(Math.round((alloc.expiresAt - now) / 1000)) },
      { type: Attr.XorMappedAddress, value: this.mappedAddress(req, link) },
    ];
    if (reservedToken) attrs.push({ type: Attr.ReservationToken, value: reservedToken });
    alloc.allocateResponse = this.respond(req, link, attrs, auth.key);
  }

  private async bindEvenPort(family: 4 | 6, reserve: boolean): Promise<[UdpSocket, UdpSocket | undefined]> {
    const type = family === 6 ? 'udp6' : 'udp4';
    const host = family === 6 ? this.opts.relayHost6! : this.opts.relayHost;
    for (let i = 0; i < 32; i++) {
      const s = await this.bindUdp(type, host, 0);
      const port = s.address().port;
      if (port % 2 !== 0 || (reserve && port === 65534)) {
        s.close();
        continue;
      }
      if (!reserve) return [s, undefined];
      try {
        const next = await this.bindUdp(type, host, port + 1);
        return [s, next];
      } catch {
        s.close();
      }
    }
    throw new RelayConfigError('no even port pair available');
  }

  private registerAllocation(a: Allocation): void {
    this.allocations.add(a);
    this.perUser.set(a.identity, (this.perUser.get(a.identity) ?? 0) + 1);
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

  private destroyAllocation(a: Allocation, closeTcp: boolean): void {
    if (a.closed) return;
    a.closed = true;
    this.allocations.delete(a);
    const n = (this.perUser.get(a.identity) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(a.identity);
    else this.perUser.set(a.identity, n);
    if (a.link.tcp) {
      if (a.link.tcp.allocation === a) a.link.tcp.allocation = undefined;
      // RFC 8656 §7: an allocation over TCP ends with its connection, and vice versa.
      if (closeTcp) a.link.tcp.socket.end();
    } else {
      const byPort = this.udpAllocs.get(a.link.address);
      if (byPort?.get(a.link.port) === a) {
        byPort.delete(a.link.port);
        if (byPort.size === 0) this.udpAllocs.delete(a.link.address);
      }
    }
    if (a.relaySocket && a.ready) a.relaySocket.close();
    this.metrics.allocationsActive = this.allocations.size;
  }

  // ---------------------------------------------------------------- Refresh (RFC 8656 §8)

  private onRefresh(req: StunMessage, link: ClientLink) {
    const auth = this.authenticate(req, link);
    if (!auth) return;
    const alloc = this.findAllocation(link);
    if (!alloc?.ready) return this.sendError(req, link, ErrorCodes.AllocationMismatch, auth.key);
    if (alloc.username !== auth.username)
      return this.sendError(req, link, ErrorCodes.WrongCredentials, auth.key);
    const v = getAttribute(req, Attr.Lifetime);
    const asked = v ? decodeU32(v) : this.opts.defaultLifetime;
    if (asked === 0) {
      this.destroyAllocation(alloc, false);
      this.respond(req, link, [{ type: Attr.Lifetime, value: encodeU32(0) }], auth.key);
      return;
    }
    const ms = this.lifetimeMs(req);
    alloc.expiresAt = this.opts.clock.now() + ms;
    this.respond(req, link, [{ type: Attr.Lifetime, value: encodeU32(ms / 1000) }], auth.key);
  }

  // ---------------------------------------------------------------- permissions and channels

  /** Validates a peer; returns the error code to send, or 0. */
  private checkPeer(alloc: Allocation, peer: TransportAddress): number {
    if (peer.family !== alloc.family) return ErrorCodes.PeerAddressFamilyMismatch;
    if (!this.guard.isAllowed(peer.address, peer.family)) {
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

  private onCreatePermission(req: StunMessage, link: ClientLink) {
    const auth = this.authenticate(req, link);
    if (!auth) return;
    const alloc = this.findAllocation(link);
    if (!alloc?.ready) return this.sendError(req, link, ErrorCodes.AllocationMismatch, auth.key);
    if (alloc.username !== auth.username)
      return this.sendError(req, link, ErrorCodes.WrongCredentials, auth.key);
    const values = getAttributes(req, Attr.XorPeerAddress);
    if (values.length === 0) return this.sendError(req, link, ErrorCodes.BadRequest, auth.key);
    const peers = values.map((v) => decodeXorAddress(v, req.transactionId));
    for (const p of peers) {
      const code = this.checkPeer(alloc, p);
      if (code !== 0) return this.sendError(req, link, code, auth.key);
    }
    const fresh = new Set(peers.map((p) => p.address).filter((a) => !alloc.permissions.has(a)));
    if (alloc.permissions.size + fresh.size > this.opts.maxPermissionsPerAllocation) {
      return this.sendError(req, link, ErrorCodes.InsufficientCapacity, auth.key);
    }
    const now = this.opts.clock.now();
    for (const p of peers) this.installPermission(alloc, p.address, now);
    this.respond(req, link, [], auth.key);
  }

  private onChannelBind(req: StunMessage, link: ClientLink) {
    const auth = this.authenticate(req, link);
    if (!auth) return;
    const alloc = this.findAllocation(link);
    if (!alloc?.ready) return this.sendError(req, link, ErrorCodes.AllocationMismatch, auth.key);
    if (alloc.username !== auth.username)
      return this.sendError(req, link, ErrorCodes.WrongCredentials, auth.key);
    const cn = getAttribute(req, Attr.ChannelNumber);
    const pa = getAttribute(req, Attr.XorPeerAddress);
    if (!cn || !pa) return this.sendError(req, link, ErrorCodes.BadRequest, auth.key);
    const number = decodeChannelNumber(cn);
    if (!isValidChannelNumber(number)) return this.sendError(req, link, ErrorCodes.BadRequest, auth.key);
    const peer = decodeXorAddress(pa, req.transactionId);
    const code = this.checkPeer(alloc, peer);
    if (code !== 0) return this.sendError(req, link, code, auth.key);
    const now = this.opts.clock.now();
    const bound = alloc.channels.get(number);
    const peerBound = alloc.peerChannels.get(peer.address)?.get(peer.port);
    // RFC 8656 §11.2: a channel maps to one peer and a peer to one channel.
    if (bound && (bound.peerAddress !== peer.address || bound.peerPort !== peer.port)) {
      return this.sendError(req, link, ErrorCodes.BadRequest, auth.key);
    }
    if (peerBound && peerBound.number !== number)
      return this.sendError(req, link, ErrorCodes.BadRequest, auth.key);
    if (!bound && alloc.channels.size >= this.opts.maxChannelsPerAllocation) {
      return this.sendError(req, link, ErrorCodes.InsufficientCapacity, auth.key);
    }
    if (
      !alloc.permissions.has(peer.address) &&
      alloc.permissions.size >= this.opts.maxPermissionsPerAllocation
    ) {
      return this.sendError(req, link, ErrorCodes.InsufficientCapacity, auth.key);
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
      };
      alloc.channels.set(number, ch);
      let byPort = alloc.peerChannels.get(peer.address);
      if (!byPort) {
        byPort = new Map();
        alloc.peerChannels.set(peer.address, byPort);
      }
      byPort.set(peer.port, ch);
    }
    this.respond(req, link, [], auth.key);
  }

  // ---------------------------------------------------------------- Send indication (RFC 8656 §10.2)

  private onSendIndication(msg: StunMessage, link: ClientLink): void {
    const m = this.metrics;
    const alloc = this.findAllocation(link);
    const pa = getAttribute(msg, Attr.XorPeerAddress);
    const data = getAttribute(msg, Attr.Data);
    if (!alloc?.relaySocket || !alloc.ready || !pa || !data) {
      m.malformedDropped++;
      return;
    }
    const peer = decodeXorAddress(pa, msg.transactionId);
    if (peer.family !== alloc.family || !this.guard.isAllowed(peer.address, peer.family)) {
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
    alloc.relaySocket.send(data, 0, data.length, peer.port, peer.address);
    m.relayedToPeer++;
    m.relayedBytes += data.length;
  }
}
