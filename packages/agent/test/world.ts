// The pieces of a real device world for agent tests: a real RendezvousClient viewer with sealed
// channels, pairing as the browser does it, and a fake media backend (real media: test/e2e).
import assert from 'node:assert/strict';
import {
  deviceIdFromKey,
  encodeId,
  type PairingMessage,
  parseManualCode,
  parseQrPayload,
  systemEnv,
  ViewerChannels,
  ViewerPairing,
  WebCryptoSigner,
} from '@hearth/protocol';
import { RendezvousClient } from '../src/device/rendezvous-client.js';
import type { MediaBackend } from '../src/device/sessions.js';
import { MediaError, type PairingInfo } from '../src/index.js';

export const ITER = 2;
export const FP = `${'AB:'.repeat(31)}AB`;
export const sdp = (tag: string) =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=${tag}\r\nt=0 0\r\na=fingerprint:sha-256 ${FP}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n`;

export function fakeMedia() {
  const state = { created: 0, closed: 0, ice: [] as unknown[], lastIce: [] as unknown[] };
  const media: MediaBackend = {
    cameras: () => [
      { name: 'demo', online: true },
      { name: 'porch', online: false },
      { name: 'attic', online: false },
    ],
    async createViewerSession(camera) {
      if (camera === 'porch') throw new Error('no signal');
      if (camera === 'attic') throw new MediaError('ffmpeg-spawn', 'camera "attic": ffmpeg cannot be run');
      state.created++;
      await new Promise((r) => setTimeout(r, 30)); // ICE gathering
      return {
        answerSdp: sdp('answer'),
        session: {
          close: () => void state.closed++,
          addIceCandidate: (c) => void state.ice.push(c),
          closed: new Promise<string | undefined>(() => {}),
        },
      };
    },
  };
  return { media, state };
}

export type Msg = { t: string; [k: string]: unknown };

/** Device keys the test viewers know (as pairing would have pinned them), by device ID. */
export const pins = new Map<string, Uint8Array>();

export interface TestViewer {
  signer: WebCryptoSigner;
  id: string;
  client: RendezvousClient;
  /** The sealed channel to devices (everything but pairing goes through it). */
  channels: ViewerChannels;
  /** Send a device⇄viewer message to a device, sealed. */
  send(to: string, m: { t: string; [k: string]: unknown }): boolean;
  inbox: { from: string; m: Msg }[];
  found: { tag: string; d: string | null }[];
  next(pred: (m: Msg, from: string) => boolean, ms?: number): Promise<Msg>;
}

export async function until<T>(what: string, f: () => T | undefined | false, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function connectViewer(url: string, signer?: WebCryptoSigner): Promise<TestViewer> {
  const s = signer ?? (await WebCryptoSigner.generate());
  const client = new RendezvousClient({
    url: `${url.replace(/^http/, 'ws')}/ws`,
    signer: s,
    role: 'viewer',
    minBackoffMs: 20,
  });
  const channels = new ViewerChannels({
    signer: s,
    env: systemEnv,
    pinned: (d) => pins.get(d),
    route: (to, m) => client.sendTo(to, m),
  });
  const v: TestViewer = {
    signer: s,
    id: encodeId('userKey', s.publicKey),
    client,
    channels,
    send: (to, m) => channels.send(to, m),
    inbox: [],
    found: [],
    async next(pred, ms = 5_000) {
      const hit = await until(
        'a message',
        () => {
          const i = v.inbox.findIndex((x) => pred(x.m, x.from));
          return i >= 0 ? v.inbox.splice(i, 1)[0] : undefined;
        },
        ms,
      );
      return hit.m;
    },
  };
  client.on('recv', (from: string, raw: unknown) => {
    void channels.receive(from, raw).then((r) => {
      if (r.kind === 'pair' || r.kind === 'message') v.inbox.push({ from, m: r.m as Msg });
    });
  });
  client.on('pair/found', (f: { tag: string; d: string | null }) => v.found.push(f));
  client.start();
  await until('viewer ready', () => client.connected);
  return v;
}

/** Pair like the browser does: lookup the tag (manual code) or read the QR, then the PAKE. */
/** `iterations`: the PAKE's password-hash cost, as the device uses it ('default': production's). */
export async function pairViewer(
  v: TestViewer,
  info: PairingInfo,
  method: 'code' | 'qr',
  iterations: number | 'default' = ITER,
) {
  let deviceId: string;
  let secret: Uint8Array;
  if (method === 'code') {
    const c = parseManualCode(info.manualCode);
    // The agent's window is open locally before its registration reaches the server: under load a
    // first lookup can come back empty, so ask again (as a person would), for up to 5 s.
    let f: { tag: string; d: string | null } | undefined;
    for (const end = Date.now() + 5_000; ; ) {
      v.client.send({ t: 'pair/lookup', tag: c.tag });
      f = await until('pair/found', () => v.found.find((x) => x.tag === c.tag));
      if (f.d || Date.now() > end) break;
      v.found.splice(v.found.indexOf(f), 1);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(f.d, 'the tag is registered');
    deviceId = f.d;
    secret = c.secret;
  } else {
    const q = parseQrPayload(info.qrUrl, { allowInsecure: true });
    deviceId = q.deviceId;
    secret = q.secret;
  }
  const vp = new ViewerPairing({
    deviceId,
    method,
    secret,
    signer: v.signer,
    env: systemEnv,
    ...(iterations !== 'default' ? { iterations } : {}),
    deviceIdMatches: (k) => deviceIdFromKey(k) === deviceId,
  });
  let step = await vp.start();
  for (;;) {
    const out = step.send[0];
    if (out) v.client.sendTo(deviceId, out);
    const reply = (await v.next((m, from) => from === deviceId && m.t.startsWith('pair/'))) as PairingMessage;
    step = await vp.receive(reply); // throws the device's pair/error as a typed error
    if (step.result) return step.result;
  }
}
