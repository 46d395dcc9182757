/**
 * Review R6: the reflection (amplification) ratio of unauthenticated requests to the relay. Sends
 * STUN Binding requests and unauthenticated Allocate requests over UDP to a real RelayServer on
 * 127.0.0.1, as an attacker with a spoofed source would (the answer goes to the victim), and prints
 * request bytes, response bytes and their ratio, for the relay's default configuration and for a
 * few realm/SOFTWARE variants. UDP payload bytes (STUN message), and on-the-wire bytes with the 28
 * bytes of IPv4 + UDP headers.
 *
 *   node --conditions=source --import tsx packages/relay/bench/reflection.ts
 *
 * Only loopback is used; the relay runs in this process and is closed at the end.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import {
  Attr,
  encodeRequestedTransport,
  encodeStunMessage,
  StunClass,
  StunMethod,
} from '../src/codec/index.js';
import { RelayServer, type RelayServerOptions } from '../src/index.js';

const N = 200;
const HEADERS = 28; // IPv4 (20) + UDP (8)

interface Row {
  config: string;
  request: string;
  reqBytes: number;
  respBytes: number;
}

/** The smallest well-formed requests an attacker would send (no FINGERPRINT, no other attributes). */
const requests: Record<string, () => Uint8Array> = {
  'Binding (20 B header only)': () =>
    encodeStunMessage({
      method: StunMethod.Binding,
      cls: StunClass.Request,
      transactionId: randomBytes(12),
      attributes: [],
    }),
  'Allocate, unauthenticated': () =>
    encodeStunMessage({
      method: StunMethod.Allocate,
      cls: StunClass.Request,
      transactionId: randomBytes(12),
      attributes: [{ type: Attr.RequestedTransport, value: encodeRequestedTransport(17) }],
    }),
  'Allocate, unauthenticated, with FINGERPRINT': () =>
    encodeStunMessage(
      {
        method: StunMethod.Allocate,
        cls: StunClass.Request,
        transactionId: randomBytes(12),
        attributes: [{ type: Attr.RequestedTransport, value: encodeRequestedTransport(17) }],
      },
      { fingerprint: true },
    ),
};

async function measure(config: string, extra: Partial<RelayServerOptions>): Promise<Row[]> {
  const server = new RelayServer();
  const { udpPort } = await server.start({
    realm: 'hearth',
    authSecret: 'bench',
    host: '127.0.0.1',
    udpPort: 0,
    tcpPort: null,
    ...extra,
  });
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const rows: Row[] = [];
  try {
    for (const [name, make] of Object.entries(requests)) {
      let reqBytes = 0;
      let respBytes = 0;
      let got = 0;
      for (let i = 0; i < N; i++) {
        const req = make();
        const resp = await new Promise<Buffer>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no answer to ${name}`)), 2000);
          sock.once('message', (m) => {
            clearTimeout(t);
            resolve(m);
          });
          sock.send(req, udpPort, '127.0.0.1');
        });
        reqBytes += req.length;
        respBytes += resp.length;
        got++;
      }
      rows.push({ config, request: name, reqBytes: reqBytes / got, respBytes: respBytes / got });
    }
  } finally {
    sock.close();
    await server.close();
  }
  return rows;
}

const configs: [string, Partial<RelayServerOptions>][] = [
  ["Hearth server's relay (realm 'hearth', SOFTWARE 'hearth-relay')", {}],
  ['realm "hearth", no SOFTWARE', { software: '' }],
  ['realm "hearth.example.org" (a longer realm), SOFTWARE', { realm: 'hearth.example.org' }],
];

const all: Row[] = [];
for (const [name, extra] of configs) all.push(...(await measure(name, extra)));

const f = (n: number) => n.toFixed(2);
console.log(`${N} requests of each kind to a RelayServer on 127.0.0.1 over UDP (Node ${process.version})\n`);
console.log(
  '| Configuration | Request | Request B | Response B | Ratio (STUN) | Ratio (with IP+UDP headers) |',
);
console.log('|---|---|---|---|---|---|');
for (const r of all) {
  console.log(
    `| ${r.config} | ${r.request} | ${r.reqBytes} | ${r.respBytes} | **${f(r.respBytes / r.reqBytes)}×** | ${f((r.respBytes + HEADERS) / (r.reqBytes + HEADERS))}× |`,
  );
}
