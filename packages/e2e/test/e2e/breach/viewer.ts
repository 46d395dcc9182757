// The protocol-level viewer of the breach-replay suite: the agent's RendezvousClient in the viewer
// role (the same client the agent tests use), the protocol's ViewerPairing, and a werift peer for
// real WebRTC offers (libdatachannel on the agent must be able to answer them). Every frame the
// viewer sends or receives is kept in `wire`: it is what the rendezvous server sees of this viewer.
// Like the real app, it speaks to a device through the sealed channel (protocol ViewerChannels),
// to the device key pinned at pairing (or pinned by the test, as an attacker who knows it would).
import assert from 'node:assert/strict';
import { RendezvousClient } from '@hearth/agent';
import {
  deviceIdFromKey,
  encodeId,
  type PairingMessage,
  type PairingMethod,
  systemEnv,
  ViewerChannels,
  ViewerPairing,
  WebCryptoSigner,
} from '@hearth/protocol';
import { until as pollUntil } from '@hearth/testkit';
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';

export type Msg = { t: string; [k: string]: unknown };

/** The shared poll (testkit's), at this suite's pace: every 10 ms, 10 s unless told. */
export const until = <T>(what: string, f: () => T | undefined | false, ms = 10_000) =>
  pollUntil(what, f, ms, 10) as Promise<T>;

export interface TestViewer {
  readonly signer: WebCryptoSigner;
  readonly id: string;
  readonly client: RendezvousClient;
  readonly inbox: { from: string; m: Msg }[];
  readonly found: { tag: string; d: string | null }[];
  /** JSON text of every frame this viewer sent (`send:`) or received (`recv:`) through the server. */
  readonly wire: string[];
  /** Messages the channel refused (tampered, replayed, unsealed...), with whether it is an attack. */
  readonly rejected: { from: string; code: string; attack: boolean }[];
  /** Pin a device key (pairing does it; a test may, as an attacker who knows the key). */
  pin(deviceId: string, key: Uint8Array): void;
  /** Sends `m`: `pair/*` in clear, everything else sealed on the device's channel. */
  send(to: string, m: Msg): void;
  /** Sends `m` in clear, outside the channel (what the agent must ignore). */
  sendClear(to: string, m: Msg): void;
  /** A hostile server's routing: where a frame addressed to `to` really goes (default: `to`). */
  rewriteTo: ((to: string) => string) | undefined;
  /** A hostile server's delivery: `m` handed to this viewer as if it came from `from`. */
  deliver(from: string, m: unknown): Promise<void>;
  next(pred: (m: Msg, from: string) => boolean, ms?: number): Promise<Msg>;
  close(): void;
}

export async function connectViewer(wsUrl: string, signer?: WebCryptoSigner): Promise<TestViewer> {
  const s = signer ?? (await WebCryptoSigner.generate());
  const client = new RendezvousClient({ url: wsUrl, signer: s, role: 'viewer', minBackoffMs: 50 });
  const wire: string[] = [];
  const inbox: { from: string; m: Msg }[] = [];
  const found: { tag: string; d: string | null }[] = [];
  const rejected: { from: string; code: string; attack: boolean }[] = [];
  const pins = new Map<string, Uint8Array>();
  const route = (to: string, m: unknown): boolean => {
    wire.push(`send:${JSON.stringify({ to, m })}`);
    return client.sendTo(self.rewriteTo?.(to) ?? to, m);
  };
  const channels = new ViewerChannels({ signer: s, env: systemEnv, pinned: (d) => pins.get(d), route });
  const receive = async (from: string, m: unknown): Promise<void> => {
    wire.push(`recv:${JSON.stringify({ from, m })}`);
    const r = await channels.receive(from, m);
    if (r.kind === 'pair' || r.kind === 'message') inbox.push({ from, m: r.m as Msg });
    else if (r.kind === 'rejected') rejected.push({ from, code: r.error.code, attack: r.attack });
  };
  client.on('recv', (from: string, m: Msg) => void receive(from, m));
  client.on('pair/found', (f: { tag: string; d: string | null }) => {
    wire.push(`recv:${JSON.stringify(f)}`);
    found.push(f);
  });
  client.start();
  await until('viewer connected', () => client.connected);
  const self: TestViewer = {
    signer: s,
    id: encodeId('userKey', s.publicKey),
    client,
    inbox,
    found,
    wire,
    rejected,
    pin(deviceId, key) {
      pins.set(deviceId, key);
    },
    send(to, m) {
      if (!m.t.startsWith('pair/') && !pins.has(to)) throw new Error(`no key pinned for ${to}`);
      channels.send(to, m);
    },
    sendClear(to, m) {
      route(to, m);
    },
    rewriteTo: undefined,
    deliver: (from, m) => receive(from, m),
    async next(pred, ms = 10_000) {
      const hit = await until(
        'a message',
        () => {
          const i = inbox.findIndex((x) => pred(x.m, x.from));
          return i >= 0 ? inbox.splice(i, 1)[0] : undefined;
        },
        ms,
      );
      return hit.m;
    },
    close: () => client.close(),
  };
  return self;
}

/** Pairs like the browser: by QR (device ID + 128-bit secret) or by manual code (tag lookup first). */
export async function pair(
  v: TestViewer,
  how:
    | { method: 'qr'; deviceId: string; secret: Uint8Array }
    | { method: 'code'; tag: string; secret: Uint8Array },
): Promise<{ role: string; deviceKey: Uint8Array }> {
  let deviceId: string;
  if (how.method === 'code') {
    // Look the tag up (again, if the device has not registered it yet: a window just opened).
    let d: string | null = null;
    for (let i = 0; i < 40 && !d; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      for (let j = v.found.length - 1; j >= 0; j--) if (v.found[j]?.tag === how.tag) v.found.splice(j, 1);
      v.wire.push(`send:${JSON.stringify({ t: 'pair/lookup', tag: how.tag })}`);
      v.client.send({ t: 'pair/lookup', tag: how.tag });
      d = (await until('pair/found', () => v.found.find((x) => x.tag === how.tag))).d;
    }
    assert.ok(d, 'the tag is registered');
    deviceId = d;
  } else {
    deviceId = how.deviceId;
  }
  const method: PairingMethod = how.method;
  const vp = new ViewerPairing({
    deviceId,
    method,
    secret: how.secret,
    signer: v.signer,
    env: systemEnv,
    deviceIdMatches: (k) => deviceIdFromKey(k) === deviceId,
  });
  let step = await vp.start();
  for (;;) {
    const out = step.send[0];
    if (out) v.send(deviceId, out as unknown as Msg);
    const reply = (await v.next(
      (m, from) => from === deviceId && m.t.startsWith('pair/'),
      30_000,
    )) as unknown as PairingMessage;
    step = await vp.receive(reply); // throws the device's pair/error as a typed error
    if (step.result) {
      v.pin(deviceId, step.result.deviceKey);
      return step.result;
    }
  }
}

/** A real WebRTC offerer (werift, recvonly H.264 on loopback) that counts the RTP it decrypts. */
export async function weriftViewer(): Promise<{
  sdp: string;
  rtp: () => number;
  answer(sdp: string): Promise<void>;
  close(): Promise<void>;
}> {
  const pc = new RTCPeerConnection({
    codecs: {
      audio: [],
      video: [
        new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
          parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
        }),
      ],
    },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceFilterCandidatePair: (p) =>
      p.remoteCandidate.host === '127.0.0.1' && p.localCandidate.host === '127.0.0.1',
  });
  let rtp = 0;
  pc.addTransceiver('video', { direction: 'recvonly' });
  // werift hands RTP to the track only after SRTP decryption, so this counts decrypted packets.
  pc.onTrack.subscribe((track) => track.onReceiveRtp.subscribe(() => void rtp++));
  await pc.setLocalDescription(await pc.createOffer());
  await until('ICE gathering', () => pc.iceGatheringState === 'complete', 5_000).catch(() => undefined);
  const sdp = loopbackOnly(pc.localDescription?.sdp ?? '');
  return {
    sdp,
    rtp: () => rtp,
    answer: (a) => pc.setRemoteDescription({ type: 'answer', sdp: loopbackOnly(a) }),
    close: () => pc.close(),
  };
}

export const loopbackOnly = (sdp: string) =>
  sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') || / 127\.0\.0\.1 /.test(l))
    .join('\r\n');
