/**
 * Node STUN/TURN relay (RFC 8489 Binding, RFC 8656 TURN with UDP relaying) over UDP, TCP and TLS:
 * the socket shell around {@link TurnCore}.
 *
 * - Control path: a STUN message from a client goes to the core's pure handlers, which return
 *   {@link RelayAction}s (send these bytes, bind a relay socket, close one, end a connection); this
 *   file performs them. Binding relay sockets is the only asynchronous step: the shell binds, then
 *   reports the port back (`relayBound` / `relayBindFailed`) and sends what the core answers.
 * - Data path, kept here: ChannelData from a client is looked up by 5-tuple (address -> port ->
 *   allocation, two Map gets, no string building), checked against channel/permission expiry and the
 *   allocation's token bucket, and sent from the relay socket with offset/length so the payload is
 *   never copied. No crypto runs and no action object is allocated per relayed packet. Peer -> client
 *   packets are framed here too (ChannelData), except Data indications, which the core encodes.
 * - TCP/TLS stream reassembly (RFC 8656 §11.5 framing) is transport work and stays here as well.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import {
  createServer as createTcpServer,
  isIPv6,
  type Server as NetServer,
  type Socket as NetSocket,
} from 'node:net';
import { networkInterfaces } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import { streamFrameSize } from '../codec/channel-data.js';
import { RelayConfigError } from '../codec/errors.js';
import { verifyTurnCredentials } from '../credentials.js';
import type { Allocation, ClientLink, StreamClient } from './allocation.js';
import { createMetrics, type RelayMetrics } from './metrics.js';
import { nodeStunCrypto } from './node-crypto.js';
import { type RelayServerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { ownAddresses, PeerGuard, SelfGuard } from './peer-guard.js';
import { type RelayAction, type RelayBind, TurnCore } from './turn-core.js';

/** Ports actually bound by {@link RelayServer.start}. */
export interface RelayAddresses {
  readonly udpPort: number | undefined;
  readonly tcpPort: number | undefined;
  readonly tlsPort: number | undefined;
}

/** A TURN-over-TCP/TLS client connection: the core's view plus the socket and reassembly buffer. */
interface TcpConnection extends StreamClient {
  readonly socket: NetSocket;
  pending: Buffer | null;
  readonly link: ClientLink;
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

/** The built-in TURN relay. Create, `start()`, read `metrics`, `close()`. */
export class RelayServer {
  /** Live counters; see {@link RelayMetrics}. */
  readonly metrics: RelayMetrics = createMetrics();
  private opts!: ResolvedOptions;
  private core!: TurnCore;
  private guard!: PeerGuard;
  private self!: SelfGuard;
  private udp: UdpSocket | undefined;
  private tcp: NetServer | undefined;
  private tlsServer: NetServer | undefined;
  private readonly tcpConns = new Set<TcpConnection>();
  /** EVEN-PORT reservations: token -> the bound odd-port socket (the core tracks their expiry). */
  private readonly reserved = new Map<string, UdpSocket>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;

  /** Binds the listeners. Rejects with RelayConfigError on bad options, or the socket error. */
  async start(options: RelayServerOptions): Promise<RelayAddresses> {
    if (this.started) throw new RelayConfigError('RelayServer already started');
    this.started = true;
    this.opts = resolveOptions(options);
    const o = this.opts;
    this.guard = new PeerGuard(o);
    this.self = new SelfGuard(ownAddresses(o, networkInterfaces()));
    this.core = new TurnCore(
      o,
      {
        crypto: nodeStunCrypto,
        randomBytes: (n) => randomBytes(n),
        verifyRest: verifyTurnCredentials,
        isPeerAllowed: (address, family, port) => this.isPeerAllowed(address, family, port),
        isSelfAddress: (address, family) => !o.allowSelfPeers && this.self.match(address, family) !== 'no',
      },
      this.metrics,
    );
    let udpPort: number | undefined;
    let tcpPort: number | undefined;
    let tlsPort: number | undefined;
    try {
      if (o.udpPort !== null) {
        const sock = await this.bindUdp(isIPv6(o.host) ? 'udp6' : 'udp4', o.host, o.udpPort);
        sock.on('message', (msg, rinfo) => this.onUdpClientPacket(msg, rinfo));
        this.udp = sock;
        udpPort = sock.address().port;
        this.self.listenPorts.add(udpPort);
      }
      if (o.tcpPort !== null) {
        this.tcp = createTcpServer({ noDelay: true }, (s) => this.onTcpConnection(s, 'tcp'));
        tcpPort = await this.listen(this.tcp, o.tcpPort);
        this.self.listenPorts.add(tcpPort);
      }
      if (o.tls) {
        this.tlsServer = createTlsServer({ cert: o.tls.cert, key: o.tls.key }, (s) =>
          this.onTcpConnection(s, 'tls'),
        );
        tlsPort = await this.listen(this.tlsServer, o.tlsPort);
        this.self.listenPorts.add(tlsPort);
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
    if (this.core) this.perform(this.core.closeAll());
    for (const s of this.reserved.values()) s.close();
    this.reserved.clear();
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
    this.perform(this.core.sweep());
  }

  /** Number of live allocations (for tests and health checks). */
  get allocationCount(): number {
    return this.core ? this.core.allocationCount : 0;
  }

  /**
   * The peer rule (review R6). The relay's own addresses (external, listen and relay addresses, every
   * interface address with a wildcard bind) are refused, port-aware:
   * - a live allocation's relayed port on one of them is allowed, whatever the ranges say: it lands in
   *   this relay's own allocation, which enforces its own permissions (two relayed clients talk so);
   * - an IPv6 form embedding one of the relay's IPv4 addresses is refused;
   * - the relay's listening ports are refused (a loop into its own STUN/TURN service);
   * - any other port is refused unless the operator's allow list names the address explicitly
   *   (allowLoopbackPeers, allowedPeerRanges: single-machine demos and tests on loopback).
   * Everything else goes to the range guard as before. `allowSelfPeers` (tests' controls) skips this.
   */
  private isPeerAllowed(address: string, family: 4 | 6, port: number): boolean {
    const self = this.opts.allowSelfPeers ? 'no' : this.self.match(address, family);
    if (self === 'direct' && this.core.isLiveRelayPort(port, family)) return true;
    if (!this.guard.isAllowed(address, family)) return false;
    if (self === 'no') return true;
    if (self === 'embedded' || this.self.listenPorts.has(port)) return false;
    return this.guard.isExplicitlyAllowed(address, family);
  }

  // ---------------------------------------------------------------- actions

  private perform(actions: readonly RelayAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send-client':
          this.sendToClient(a.link, a.data);
          break;
        case 'send-peer':
          a.allocation.relaySocket?.send(a.data, 0, a.data.length, a.port, a.address);
          break;
        case 'bind-relay':
          void this.bindRelay(a.bind).catch(() => {
            this.metrics.internalErrors++;
          });
          break;
        case 'close-relay':
          if (a.allocation.relaySocket && a.allocation.ready) a.allocation.relaySocket.close();
          break;
        case 'close-client':
          (a.link.tcp as TcpConnection | undefined)?.socket.end();
          break;
        case 'drop-reservation': {
          const s = this.reserved.get(a.token);
          this.reserved.delete(a.token);
          s?.close();
          break;
        }
      }
    }
  }

  /** Binds the relay socket of a new allocation and reports it to the core. */
  private async bindRelay(bind: RelayBind): Promise<void> {
    const alloc = bind.allocation;
    let sock: UdpSocket;
    let next: UdpSocket | undefined;
    try {
      const m = bind.mode;
      if (m.kind === 'reserved') {
        const r = this.reserved.get(m.token);
        if (!r) throw new RelayConfigError('unknown reservation token');
        this.reserved.delete(m.token);
        sock = r;
      } else if (m.kind === 'even') {
        [sock, next] = await this.bindEvenPort(bind.family, bind.host, m.reserve);
      } else {
        sock = await this.bindUdp(bind.family === 6 ? 'udp6' : 'udp4', bind.host, 0);
      }
    } catch {
      const out = this.core.relayBindFailed(bind);
      if (!this.closed) this.perform(out);
      return;
    }
    const bound = this.closed
      ? undefined
      : this.core.relayBound(bind, sock.address().port, next !== undefined);
    if (bound === undefined) {
      sock.close();
      next?.close();
      return;
    }
    alloc.relaySocket = sock;
    sock.on('message', (msg, rinfo) => this.onPeerPacket(alloc, msg, rinfo));
    if (next && bound.token !== undefined) this.reserved.set(bound.token, next);
    this.perform(bound.actions);
  }

  private async bindEvenPort(
    family: 4 | 6,
    host: string,
    reserve: boolean,
  ): Promise<[UdpSocket, UdpSocket | undefined]> {
    const type = family === 6 ? 'udp6' : 'udp4';
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
        const alloc = this.core.udpAllocation(rinfo.address, rinfo.port);
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
      this.perform(this.core.handleStun(msg, link));
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
    if (ch.selfPeer && !this.isPeerAllowed(ch.peerAddress, ch.peerFamily, ch.peerPort)) {
      // A channel to another allocation of this relay that has ended since (review R6).
      m.forbiddenPeer++;
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
    (conn.link as { tcp: StreamClient | undefined }).tcp = conn;
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
      this.perform(this.core.clientClosed(conn.link));
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
          this.perform(this.core.handleStun(buf.subarray(off, off + size), conn.link));
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
    const c = link.tcp as TcpConnection | undefined;
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

  /** Peer -> client: permission, size and bucket checks, then ChannelData framing or a Data indication. */
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
        out = this.core.dataIndication(alloc, rinfo.address, rinfo.port, msg);
      }
      this.sendToClient(alloc.link, out);
      m.relayedToClient++;
      m.relayedBytes += len;
    } catch {
      m.internalErrors++;
    }
  }
}
