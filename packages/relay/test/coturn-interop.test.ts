/** Interop: coturn's own client (turnutils_uclient) and peer (turnutils_peer) against our relay. */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { RelayServer } from '../src/index.js';
import { freeUdpPort, haveBinary, runUclient, startPeer, stopProcess } from './helpers/coturn.js';
import { startTestRelay } from './helpers/turn-client.js';

const HAVE = haveBinary('turnutils_uclient') && haveBinary('turnutils_peer');
const SECRET = 'interop-secret';

describe('coturn turnutils_uclient interop', {
  skip: HAVE ? false : 'coturn tools (turnutils_uclient/turnutils_peer) not installed',
}, () => {
  let server: RelayServer;
  let udpPort: number;
  let tcpPort: number;
  let peer: ChildProcess;
  let peerPort: number;

  before(async () => {
    ({ server, udpPort, tcpPort } = await startTestRelay(SECRET));
    peerPort = await freeUdpPort();
    peer = await startPeer(peerPort);
  });
  after(async () => {
    if (peer) await stopProcess(peer);
    await server.close();
  });

  const cases: { name: string; flags: string[]; tcp: boolean }[] = [
    { name: 'UDP, channels, RTP+RTCP (EVEN-PORT/RESERVATION-TOKEN)', flags: [], tcp: false },
    { name: 'UDP, Send/Data indications', flags: ['-s'], tcp: false },
    { name: 'UDP, client-to-client through two relays', flags: ['-y'], tcp: false },
    { name: 'TCP control connection, channels', flags: ['-t'], tcp: true },
    {
      name: 'TCP control connection, Send indications, odd sizes',
      flags: ['-t', '-s', '-l', '171'],
      tcp: true,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await runUclient(
        [
          ...c.flags,
          '-W',
          SECRET,
          '-u',
          'interop',
          '-e',
          '127.0.0.1',
          '-r',
          String(peerPort),
          '-p',
          String(c.tcp ? tcpPort : udpPort),
          '-n',
          '50',
          '-m',
          '4',
          ...(c.flags.includes('-l') ? [] : ['-l', '120']),
          '127.0.0.1',
        ],
        30_000,
      );
      const detail = r.output.split('\n').slice(-15).join('\n');
      assert.equal(r.exitCode, 0, detail);
      assert.ok(r.sent > 0, `sent ${r.sent}\n${detail}`);
      assert.equal(r.received, r.sent, detail);
      assert.equal(r.lost, 0, detail);
      // Under load the client may time out on an Allocate whose answer is still in flight and send
      // a new one (new transaction) on the same 5-tuple: 437 is the right answer, and uclient says
      // "trying allocate again" and goes on with the allocation it has. Anything else is an error.
      const retried = /trying allocate again 437/.test(r.output);
      const errors = r.errors.filter((e) => !(retried && /error 437 \(Allocation Mismatch\)/.test(e)));
      assert.deepEqual(errors, [], detail);
    });
  }

  it('wrong REST secret is refused', async () => {
    const r = await runUclient(
      [
        '-W',
        'not-the-secret',
        '-u',
        'x',
        '-e',
        '127.0.0.1',
        '-r',
        String(peerPort),
        '-p',
        String(udpPort),
        '-n',
        '5',
        '127.0.0.1',
      ],
      15_000,
    );
    assert.ok(!(r.received > 0), r.output.slice(-500));
    assert.ok(server.metrics.unauthorized > 0);
  });
});
