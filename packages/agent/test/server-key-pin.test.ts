/**
 * Review R15 through the real agent and real servers: the agent pins the server key (hsk_) it
 * meets first and holds every later server to it, as ssh does with known_hosts.
 * - A server with another key (a reinstall, or someone else at the address): the agent stops
 *   before it sends any proof, and says `server-key-changed`; `acceptServerKey` takes the new key.
 * - An impostor that names the pinned key in `hello` but cannot sign `ready.proof`: refused too.
 * Control: with pinning off, the agent connects to both without a word.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeId, deviceIdFromKey, newChallenge, systemEnv } from '@hearth/protocol';
import { startTestHub, type TestHub } from '@hearth/server/testing';
import { WebSocketServer } from 'ws';
import { type Agent, type AgentEvent, startAgent } from '../src/index.js';
import { fakeMedia, until } from './world.js';

/** A server that names `claim` as its key, accepts any auth and sends `ready` with no proof. */
async function impostor(claim: string) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws' });
  await new Promise((r) => wss.once('listening', r));
  let readies = 0;
  wss.on('connection', (ws) => {
    ws.send(JSON.stringify({ t: 'hello', v: 1, srv: claim, ch: newChallenge(systemEnv) }));
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.t !== 'auth') return;
      readies++;
      // The ID the client proved (its key is in the auth envelope), as a real server would say.
      const id = deviceIdFromKey(decodeId('deviceKey', f.env.k));
      ws.send(JSON.stringify({ t: 'ready', id, ice: [] }));
    });
  });
  const port = (wss.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    readies: () => readies,
    close: () => new Promise<void>((r) => wss.close(() => r())),
  };
}

describe('the agent pins the server key (review R15)', () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-pin-')), 'data');
  const hubs: TestHub[] = [];
  const agents: Agent[] = [];
  after(async () => {
    for (const a of agents) await a.close();
    for (const h of hubs) await h.close();
    rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });
  async function run(serverUrl: string, o: { pinServerKey?: boolean; acceptServerKey?: string } = {}) {
    const events: AgentEvent[] = [];
    const agent = await startAgent({
      dataDir,
      serverUrl,
      media: fakeMedia().media,
      minBackoffMs: 20,
      maxBackoffMs: 200,
      onEvent: (e) => events.push(e),
      ...o,
    });
    agents.push(agent);
    return { agent, events };
  }

  it('first contact pins the key; a server with another key is refused before any proof; accepting it works', async () => {
    const one = await startTestHub({ serveViewer: false });
    const two = await startTestHub({ serveViewer: false });
    hubs.push(one, two);
    const a = await run(one.url);
    await until('connected', () => a.agent.client.connected);
    assert.equal(readFileSync(join(dataDir, 'server-key'), 'utf8').trim(), one.serverKey);
    await a.agent.close();

    const b = await run(two.url);
    const changed = await until('server-key-changed', () =>
      b.events.find((e) => e.kind === 'server-key-changed'),
    );
    assert.deepEqual(
      { pinned: changed.pinned, offered: changed.offered },
      { pinned: one.serverKey, offered: two.serverKey },
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(two.authenticated.length, 0, 'no proof of ours reached the other server');
    assert.equal(b.agent.client.connected, false);
    await b.agent.close();

    const c = await run(two.url, { acceptServerKey: two.serverKey });
    await until('connected after accepting', () => c.agent.client.connected);
    assert.ok(two.authenticated.includes(c.agent.deviceId));
    assert.equal(readFileSync(join(dataDir, 'server-key'), 'utf8').trim(), two.serverKey);
    await c.agent.close();
  });

  it('an impostor that names the pinned key but cannot prove it is refused', async () => {
    const pinned = readFileSync(join(dataDir, 'server-key'), 'utf8').trim();
    const imp = await impostor(pinned);
    try {
      const d = await run(imp.url);
      const changed = await until('server-key-changed', () =>
        d.events.find((e) => e.kind === 'server-key-changed'),
      );
      assert.match(changed.reason, /did not prove/);
      assert.equal(d.agent.client.connected, false);
      await d.agent.close();
    } finally {
      await imp.close();
    }
  });

  it('control: with pinning off, the agent connects to the impostor and to another server silently', async () => {
    const pinned = readFileSync(join(dataDir, 'server-key'), 'utf8').trim();
    const imp = await impostor(pinned);
    try {
      const e = await run(imp.url, { pinServerKey: false });
      await until('ready from the impostor', () => e.agent.client.connected);
      assert.ok(!e.events.some((x) => x.kind === 'server-key-changed'));
      await e.agent.close();
    } finally {
      await imp.close();
    }
    const f = await run(hubs[0]!.url, { pinServerKey: false });
    await until('connected to the first server again', () => f.agent.client.connected);
    assert.ok(!f.events.some((x) => x.kind === 'server-key-changed'));
  });
});
