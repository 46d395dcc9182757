// Faults (issue 9): the server is killed (SIGKILL, its own process) in the middle of a burst of
// events, and started again on the same data directory and port. Every sealed blob still arrives:
// what the server lists afterwards is exactly the device's own record of what it sealed (its
// uploaded-blob index, with the outbox empty), each blob intact (the server checks every upload's
// SHA-256 against the device-signed ticket, and the clips open to their exact bytes). Nothing is
// lost while the server is down: the blobs wait in the outbox.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  blobAuthorization,
  blobPath,
  decodeBlobListing,
  encodeReaderKey,
  openBlob,
  signReaderKey,
  systemEnv,
  x25519Generate,
} from '@hearth/protocol';
import { loadOrCreateIdentity } from '../src/device/identity.js';
import type { EventRecording } from '../src/events/recorder.js';
import { type Agent, startAgent } from '../src/index.js';
import { connectViewer, fakeMedia, ITER, pairViewer, pins, type TestViewer, until } from './world.js';

const CHILD = fileURLToPath(new URL('./support/server-child.ts', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Start the server child; resolves with it once it listens. */
function startChild(dataDir: string, port: number): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', CHILD, dataDir, String(port)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const t = setTimeout(() => reject(new Error(`server child did not start: ${out}`)), 30_000);
    child.stdout?.on('data', (d) => {
      out += d;
      const m = /listening (\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: m[1]! });
      }
    });
    child.stderr?.on('data', (d) => {
      out += d;
    });
    child.on('exit', (c) => reject(new Error(`server child exited ${c}: ${out}`)));
  });
}

describe('faults: the server killed during a burst of events', () => {
  let serverDir: string;
  let dataDir: string;
  let port: number;
  let srv: { child: ChildProcess; url: string };
  let agent: Agent;
  let owner: TestViewer;
  let emitRecording: ((r: EventRecording) => void) | undefined;
  const clips = new Map<number, Uint8Array>();

  before(async () => {
    serverDir = mkdtempSync(join(tmpdir(), 'hearth-faults-srv-'));
    dataDir = join(mkdtempSync(join(tmpdir(), 'hearth-faults-')), 'data');
    port = await freePort();
    srv = await startChild(serverDir, port);
    agent = await startAgent({
      dataDir,
      serverUrl: srv.url,
      media: {
        ...fakeMedia().media,
        onRecording: (l: (r: EventRecording) => void) => {
          emitRecording = l;
          return () => {};
        },
      },
      pairingIterations: ITER,
      minBackoffMs: 20,
      maxBackoffMs: 300,
      events: { minBackoffMs: 50, maxBackoffMs: 500 },
    });
    pins.set(agent.deviceId, (await loadOrCreateIdentity(dataDir)).signer.publicKey);
    await until('pairing window', () => agent.pairing());
    owner = await connectViewer(srv.url);
    await pairViewer(owner, agent.pairing()!, 'qr');
  });

  after(async () => {
    await agent?.close();
    owner?.client.close();
    srv?.child.kill('SIGKILL');
    rmSync(serverDir, { recursive: true, force: true });
    if (dataDir) rmSync(join(dataDir, '..'), { recursive: true, force: true });
  });

  it('every sealed clip arrives, checked against the device’s own index of what it sealed', async () => {
    const kp = await x25519Generate();
    owner.send(agent.deviceId, {
      t: 'reader/key',
      rk: encodeReaderKey(await signReaderKey(owner.signer, kp.publicKey)),
    });
    assert.deepEqual(await owner.next((m) => m.t === 'reader/ok' || m.t === 'reader/error'), {
      t: 'reader/ok',
    });
    assert.ok(emitRecording);
    const N = 8;
    const t = Date.now();
    for (let i = 0; i < N; i++) {
      // Clips big enough that uploads are in flight when the server dies.
      const clip = new Uint8Array(400_000 + i).map((_, j) => (j * (i + 3)) % 251);
      clips.set(t + i * 1000, clip);
      emitRecording({
        camera: 'porch',
        kind: 'motion',
        trigger: t + i * 1000,
        start: t + i * 1000 - 500,
        end: t + i * 1000 + 500,
        snapshot: undefined,
        clip,
        frames: 10,
        truncated: false,
      });
      if (i === 2) {
        // Killed mid-burst, with some blobs uploaded and the rest queued or in flight.
        await until('a first upload', () => agent.events.uploaded.count > 0, 20_000);
        srv.child.kill('SIGKILL');
        await new Promise((r) => srv.child.once('exit', r));
      }
    }
    // All sealed (whether uploaded before the kill or waiting): N clips and N event records.
    const clipsSealed = () =>
      agent.events.uploaded.list().filter((b) => b.kind === 'clip').length +
      agent.events.outbox.list().filter((m) => m.kind === 'clip').length;
    await until('every event sealed', () => clipsSealed() === N, 30_000);
    assert.ok(agent.events.outbox.count > 0, 'blobs wait in the outbox while the server is down');
    await new Promise((r) => setTimeout(r, 500));
    srv = await startChild(serverDir, port);
    await until('the outbox drained', () => agent.events.outbox.count === 0, 60_000);

    const sealed = agent.events.uploaded.list();
    assert.equal(sealed.filter((b) => b.kind === 'clip').length, N);
    const path = blobPath(agent.deviceId);
    const get = async (p: string) =>
      fetch(`${srv.url}${p}`, {
        headers: {
          authorization: await blobAuthorization(owner.signer, 'user', 'GET', p, undefined, systemEnv),
        },
      });
    const listing = decodeBlobListing(new Uint8Array(await (await get(path)).arrayBuffer()));
    assert.deepEqual(listing.blobs.map((b) => b.id).sort(), sealed.map((b) => b.id).sort());
    // Each clip opens to its exact bytes.
    const reader = { userKey: owner.id, x25519: kp };
    for (const b of sealed.filter((x) => x.kind === 'clip')) {
      const r = await get(blobPath(agent.deviceId, b.id));
      assert.equal(r.status, 200);
      const opened = await openBlob(new Uint8Array(await r.arrayBuffer()), {
        pinnedDeviceKey: pins.get(agent.deviceId) as Uint8Array,
        reader,
        camera: 'porch',
      });
      assert.deepEqual(opened.plaintext, clips.get(b.t), `clip of ${b.t}`);
    }
  });
});
