/** Minimal TURN client over UDP or TCP built on the codec, for tests. */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as NetSocket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  Attr,
  decodeErrorCode,
  decodeString,
  decodeStunMessage,
  decodeXorAddress,
  encodeChannelData,
  encodeChannelNumber,
  encodeRequestedTransport,
  encodeString,
  encodeStunMessage,
  encodeU32,
  encodeXorAddress,
  getAttribute,
  longTermKey,
  type StunAttribute,
  StunClass,
  type StunMessage,
  StunMethod,
  streamFrameSize,
  type TransportAddress,
} from '../../src/codec/index.js';
import { RelayServer, type RelayServerOptions } from '../../src/index.js';
import { nodeStunCrypto } from '../../src/server/node-crypto.js';

export interface Response {
  msg: StunMessage;
  /** ERROR-CODE number, 0 for success. */
  code: number;
}

export class TestTurnClient {
  private readonly waiters = new Map<string, (m: StunMessage) => void>();
  private readonly inbox: Buffer[] = [];
  private inboxWaiter: ((b: Buffer) => void) | undefined;
  private pending: Buffer | null = null;
  realm = '';
  nonce = '';
  key: Uint8Array | undefined;
  username = '';
  localPort = 0;

  private constructor(
    private readonly udp: UdpSocket | undefined,
    private readonly tcp: NetSocket | undefined,
    private readonly serverPort: number,
  ) {}

  static async udp(serverPort: number): Promise<TestTurnClient> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const c = new TestTurnClient(s, undefined, serverPort);
    c.localPort = s.address().port;
    s.on('message', (b) => c.onPacket(b));
    return c;
  }

  static async tcp(serverPort: number): Promise<TestTurnClient> {
    const s = connect(serverPort, '127.0.0.1');
    await new Promise<void>((r, j) => {
      s.once('connect', () => r());
      s.once('error', j);
    });
    return TestTurnClient.stream(s, serverPort);
  }

  /** TURN over TLS (`turns:`); the test certificate is not checked. */
  static async tls(serverPort: number): Promise<TestTurnClient> {
    const s = tlsConnect({ port: serverPort, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise<void>((r, j) => {
      s.once('secureConnect', () => r());
      s.once('error', j);
    });
    return TestTurnClient.stream(s, serverPort);
  }

  private static stream(s: NetSocket, serverPort: number): TestTurnClient {
    const c = new TestTurnClient(undefined, s, serverPort);
    c.localPort = s.localPort ?? 0;
    s.on('data', (chunk: Buffer) => c.onStream(chunk));
    s.on('error', () => {});
    return c;
  }

  private onStream(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const n = streamFrameSize(buf);
      if (n < 0 || buf.length < n) break;
      this.onPacket(buf.subarray(0, n));
      buf = buf.subarray(n);
    }
    this.pending = buf.length ? buf : null;
  }

  private onPacket(b: Buffer): void {
    if ((b[0]! & 0xc0) === 0) {
      try {
        const m = decodeStunMessage(b);
        if (m.cls === StunClass.SuccessResponse || m.cls === StunClass.ErrorResponse) {
          const k = Buffer.from(m.transactionId).toString('hex');
          const w = this.waiters.get(k);
          if (w) {
            this.waiters.delete(k);
            w(m);
          }
          return;
        }
      } catch {
        return;
      }
    }
    if (this.inboxWaiter) {
      const w = this.inboxWaiter;
      this.inboxWaiter = undefined;
      w(b);
    } else this.inbox.push(b);
  }

  /** Raw send to the server. */
  send(b: Uint8Array): void {
    if (this.udp) this.udp.send(b, this.serverPort, '127.0.0.1');
    else this.tcp!.write(b);
  }

  /** Next non-response packet (Data indication or ChannelData), or rejects after `ms`. */
  nextPacket(ms = 2000): Promise<Buffer> {
    const b = this.inbox.shift();
    if (b) return Promise.resolve(b);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.inboxWaiter = undefined;
        reject(new Error('no packet'));
      }, ms);
      this.inboxWaiter = (p) => {
        clearTimeout(t);
        resolve(p);
      };
    });
  }

  /** Expects no packet within `ms`. */
  async expectSilence(ms = 300): Promise<boolean> {
    try {
      await this.nextPacket(ms);
      return false;
    } catch {
      return true;
    }
  }

  /** `attributes` may be a function of the transaction ID (XOR-PEER-ADDRESS of an IPv6 peer needs it). */
  async request(
    method: number,
    attributes: StunAttribute[] | ((tid: Uint8Array) => StunAttribute[]),
    auth = true,
    fingerprint = true,
  ): Promise<Response> {
    const tid = randomBytes(12);
    const attrs = [...(typeof attributes === 'function' ? attributes(tid) : attributes)];
    if (auth && this.key) {
      attrs.push(
        { type: Attr.Username, value: encodeString(this.username) },
        { type: Attr.Realm, value: encodeString(this.realm) },
        { type: Attr.Nonce, value: encodeString(this.nonce) },
      );
    }
    const out = encodeStunMessage(
      { method, cls: StunClass.Request, transactionId: tid, attributes: attrs },
      { integrityKey: auth ? this.key : undefined, crypto: nodeStunCrypto, fingerprint },
    );
    const p = new Promise<StunMessage>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(tid.toString('hex'));
        reject(new Error('request timed out'));
      }, 2000);
      this.waiters.set(tid.toString('hex'), (m) => {
        clearTimeout(t);
        resolve(m);
      });
    });
    this.send(out);
    const msg = await p;
    const ec = getAttribute(msg, Attr.ErrorCode);
    return { msg, code: ec ? decodeErrorCode(ec).code : 0 };
  }

  /** Allocate with the 401 dance. Returns the final response. */
  async allocate(
    username: string,
    password: string,
    extra: StunAttribute[] = [],
    transport = 17,
  ): Promise<Response> {
    const attrs = [{ type: Attr.RequestedTransport, value: encodeRequestedTransport(transport) }, ...extra];
    const first = await this.request(StunMethod.Allocate, attrs, false);
    if (first.code !== 401) return first;
    this.realm = decodeString(getAttribute(first.msg, Attr.Realm)!, 763);
    this.nonce = decodeString(getAttribute(first.msg, Attr.Nonce)!, 763);
    this.username = username;
    this.key = longTermKey(username, this.realm, password, nodeStunCrypto);
    return this.request(StunMethod.Allocate, attrs);
  }

  relayed(r: Response): TransportAddress {
    return decodeXorAddress(getAttribute(r.msg, Attr.XorRelayedAddress)!, r.msg.transactionId);
  }

  createPermission(peer: TransportAddress): Promise<Response> {
    // XOR with the request's tid (IPv6 needs it; IPv4 XOR uses the cookie alone).
    return this.request(StunMethod.CreatePermission, (tid) => [
      { type: Attr.XorPeerAddress, value: encodeXorAddress(peer, tid) },
    ]);
  }

  channelBind(channel: number, peer: TransportAddress): Promise<Response> {
    return this.request(StunMethod.ChannelBind, (tid) => [
      { type: Attr.ChannelNumber, value: encodeChannelNumber(channel) },
      { type: Attr.XorPeerAddress, value: encodeXorAddress(peer, tid) },
    ]);
  }

  refresh(lifetime: number): Promise<Response> {
    return this.request(StunMethod.Refresh, [{ type: Attr.Lifetime, value: encodeU32(lifetime) }]);
  }

  sendIndication(peer: TransportAddress, data: Uint8Array): void {
    const tid = randomBytes(12);
    this.send(
      encodeStunMessage({
        method: StunMethod.Send,
        cls: StunClass.Indication,
        transactionId: tid,
        attributes: [
          { type: Attr.XorPeerAddress, value: encodeXorAddress(peer, tid) },
          { type: Attr.Data, value: data },
        ],
      }),
    );
  }

  sendChannelData(channel: number, data: Uint8Array): void {
    this.send(encodeChannelData(channel, data, { pad: this.tcp !== undefined }));
  }

  close(): void {
    this.udp?.close();
    this.tcp?.destroy();
  }
}

/** A UDP peer on 127.0.0.1 that records what it receives. */
export class TestPeer {
  private readonly inbox: { data: Buffer; port: number }[] = [];
  private waiter: ((p: { data: Buffer; port: number }) => void) | undefined;
  port = 0;
  private constructor(private readonly sock: UdpSocket) {}

  static async create(): Promise<TestPeer> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const p = new TestPeer(s);
    p.port = s.address().port;
    s.on('message', (data, rinfo) => {
      const item = { data, port: rinfo.port };
      if (p.waiter) {
        const w = p.waiter;
        p.waiter = undefined;
        w(item);
      } else p.inbox.push(item);
    });
    return p;
  }

  get address(): TransportAddress {
    return { family: 4, address: '127.0.0.1', port: this.port };
  }

  next(ms = 2000): Promise<{ data: Buffer; port: number }> {
    const b = this.inbox.shift();
    if (b) return Promise.resolve(b);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error('peer got nothing'));
      }, ms);
      this.waiter = (p) => {
        clearTimeout(t);
        resolve(p);
      };
    });
  }

  async expectSilence(ms = 300): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  sendTo(port: number, data: Uint8Array): void {
    this.sock.send(data, port, '127.0.0.1');
  }

  close(): void {
    this.sock.close();
  }
}

/** Manually advanced clock. */
export class FakeClock {
  constructor(public t: number = Date.now()) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/**
 * A RelayServer on 127.0.0.1 with ephemeral UDP/TCP ports and loopback peers allowed, for tests.
 * With a `clock`, expiry is driven by it (no sweep timer).
 */
export async function startTestRelay(
  secret: string,
  opts: Partial<RelayServerOptions> = {},
): Promise<{ server: RelayServer; udpPort: number; tcpPort: number }> {
  const server = new RelayServer();
  const ports = await server.start({
    realm: 'hearth.test',
    authSecret: secret,
    host: '127.0.0.1',
    udpPort: 0,
    tcpPort: 0,
    allowLoopbackPeers: true,
    ...(opts.clock ? { sweepIntervalMs: 0 } : {}),
    ...opts,
  });
  return { server, udpPort: ports.udpPort as number, tcpPort: ports.tcpPort as number };
}
