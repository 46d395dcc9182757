/**
 * The viewer's wrapper around the protocol's RendezvousCore, over a scripted browser-style
 * WebSocket: it authenticates as a viewer, numbers its `send` refs, and re-sends the presence watch
 * list after every reconnect (before other `ready` listeners run).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeClientFrame,
  deviceIdFromKey,
  encodeId,
  newChallenge,
  systemEnv,
  verifyAuth,
  WebCryptoSigner,
} from '@hearth/protocol';
import { RendezvousClient } from '../src/net/rendezvous.js';

const SRV = encodeId('serverKey', new Uint8Array(32).fill(3));

/** A browser-style WebSocket the test plays the server of. */
class ScriptedWs {
  static all: ScriptedWs[] = [];
  readyState = 1;
  sent: string[] = [];
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  closedWith: number | undefined;
  constructor(readonly url: string) {
    ScriptedWs.all.push(this);
  }
  send(s: string) {
    this.sent.push(s);
  }
  close(code?: number) {
    this.closedWith = code;
    this.readyState = 3;
  }
  server(f: unknown) {
    this.onmessage?.({ data: typeof f === 'string' ? f : JSON.stringify(f) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
  frames() {
    return this.sent.map((s) => decodeClientFrame(s) as { t: string; [k: string]: unknown });
  }
}

async function until(what: string, f: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never happened: ${what}`);
}

describe('viewer RendezvousClient (over RendezvousCore)', () => {
  it('authenticates as the viewer, keeps the watch list across reconnects, numbers refs', async () => {
    ScriptedWs.all = [];
    const signer = await WebCryptoSigner.generate(true);
    const me = encodeId('userKey', signer.publicKey);
    const dev = deviceIdFromKey(new Uint8Array(32).fill(8));
    const rv = new RendezvousClient({
      url: 'wss://example.test/ws',
      signer,
      env: systemEnv,
      WebSocketImpl: ScriptedWs as unknown as new (url: string) => WebSocket,
      baseBackoffMs: 4,
      maxBackoffMs: 8,
    });
    const statuses: string[] = [];
    rv.on('status', (s) => statuses.push(s));
    const seenAtReady: string[][] = [];
    rv.on('ready', () => {
      // The watch list went out before this listener ran.
      seenAtReady.push(
        ScriptedWs.all
          .at(-1)!
          .frames()
          .map((f) => f.t),
      );
    });
    const handshake = async (ws: ScriptedWs) => {
      const ch = newChallenge(systemEnv);
      ws.server({ t: 'hello', v: 1, srv: SRV, ch });
      await until('auth', () => ws.sent.length > 0);
      const auth = ws.frames()[0]!;
      const who = await verifyAuth(auth.env, { serverKey: SRV, challenge: ch, now: Date.now() });
      assert.deepEqual([who.role, who.id], ['viewer', me]);
      ws.server({ t: 'ready', id: me, ice: [] });
    };

    rv.start();
    assert.equal(ScriptedWs.all[0]?.url, 'wss://example.test/ws');
    rv.watch([dev]); // before ready: remembered, not sent
    assert.equal(ScriptedWs.all[0]!.sent.length, 0);
    await handshake(ScriptedWs.all[0]!);
    assert.equal(rv.ready, true);
    assert.equal(rv.id, me);
    assert.deepEqual(seenAtReady[0], ['auth', 'watch']);
    assert.deepEqual(ScriptedWs.all[0]!.frames()[1], { t: 'watch', d: [dev] });
    assert.equal(rv.sendTo(dev, { t: 'cameras' }), 'r1');
    assert.equal(rv.sendTo(dev, { t: 'cameras' }), 'r2');

    ScriptedWs.all[0]!.drop();
    assert.equal(rv.status, 'down');
    assert.equal(rv.sendTo(dev, { t: 'cameras' }), undefined, 'nothing is sent while down');
    await until('reconnected', () => ScriptedWs.all.length === 2);
    await handshake(ScriptedWs.all[1]!);
    assert.deepEqual(ScriptedWs.all[1]!.frames()[1], { t: 'watch', d: [dev] }, 'the watch list is back');
    assert.deepEqual(statuses, [
      'connecting',
      'authenticating',
      'ready',
      'down',
      'connecting',
      'authenticating',
      'ready',
    ]);

    // Frames that do not decode are counted and dropped.
    ScriptedWs.all[1]!.server('{"t":"recv"}');
    ScriptedWs.all[1]!.onmessage?.({ data: new ArrayBuffer(4) });
    assert.equal(rv.badFrames, 2);

    rv.stop();
    assert.equal(ScriptedWs.all[1]!.closedWith, 1000);
    assert.equal(rv.status, 'down');
  });
});
