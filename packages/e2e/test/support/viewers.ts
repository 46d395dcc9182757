/**
 * Test viewers for the in-process end-to-end tests: a real RendezvousClient with the protocol's
 * sealed channels, pairing by code as the browser does it, and a fake media backend (the media path
 * is not what these tests are about; test/e2e and packages/cli/test/e2e use real ffmpeg).
 */
import assert from 'node:assert/strict';
import {
  type Agent,
  type AgentOptions,
  type MediaBackend,
  type PairingInfo,
  RendezvousClient,
  startAgent,
} from '@hearth/agent';
import {
  decodeLogEntry,
  deviceIdFromKey,
  encodeId,
  type PairingMessage,
  parseManualCode,
  systemEnv,
  ViewerChannels,
  ViewerPairing,
  WebCryptoSigner,
} from '@hearth/protocol';

export const ITER = 2;
export const FP = `${'AB:'.repeat(31)}AB`;
export const sdp = (tag: string) =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=${tag}\r\nt=0 0\r\na=fingerprint:sha-256 ${FP}\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n`;

export const media: MediaBackend = {
  cameras: () => [{ name: 'demo', online: true }],
  async createViewerSession() {
    return {
      answerSdp: sdp('answer'),
      session: { close: () => {}, closed: new Promise<string | undefined>(() => {}) },
    };
  },
};

export type Msg = { t: string; [k: string]: unknown };

export async function until<T>(what: string, f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const pins = new Map<string, Uint8Array>();

export interface Viewer {
  signer: WebCryptoSigner;
  id: string;
  client: RendezvousClient;
  send(to: string, m: Msg): boolean;
  next(pred: (m: Msg, from: string) => boolean, ms?: number): Promise<Msg>;
  close(): void;
}

export async function connectViewer(url: string, signer?: WebCryptoSigner): Promise<Viewer> {
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
  const inbox: { from: string; m: Msg }[] = [];
  client.on('recv', (from: string, raw: unknown) => {
    void channels.receive(from, raw).then((r) => {
      if (r.kind === 'pair' || r.kind === 'message') inbox.push({ from, m: r.m as Msg });
    });
  });
  const found: { tag: string; d: string | null }[] = [];
  client.on('pair/found', (f: { tag: string; d: string | null }) => found.push(f));
  client.start();
  await until('viewer ready', () => client.connected);
  const v: Viewer & { found: typeof found } = {
    signer: s,
    id: encodeId('userKey', s.publicKey),
    client,
    found,
    send: (to, m) => channels.send(to, m),
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
  return v;
}

export async function pairByCode(v: Viewer, info: PairingInfo) {
  const c = parseManualCode(info.manualCode);
  v.client.send({ t: 'pair/lookup', tag: c.tag });
  const f = await until('pair/found', () =>
    (v as Viewer & { found: { tag: string; d: string | null }[] }).found.find((x) => x.tag === c.tag),
  );
  assert.ok(f.d);
  const deviceId = f.d;
  const vp = new ViewerPairing({
    deviceId,
    method: 'code',
    secret: c.secret,
    signer: v.signer,
    env: systemEnv,
    iterations: ITER,
    deviceIdMatches: (k) => deviceIdFromKey(k) === deviceId,
  });
  let step = await vp.start();
  for (;;) {
    const out = step.send[0];
    if (out) v.client.sendTo(deviceId, out);
    const reply = (await v.next((m, from) => from === deviceId && m.t.startsWith('pair/'))) as PairingMessage;
    step = await vp.receive(reply);
    if (step.result) return step.result;
  }
}

/**
 * A real agent for these tests: the fake media, fast pairing and backoff, no uploads; `window` gets
 * each pairing window. `extra` adds or overrides options.
 */
export function startTestAgent(
  dataDir: string,
  serverUrl: string,
  window: (i: PairingInfo) => void,
  extra: Partial<AgentOptions> = {},
) {
  return startAgent({
    dataDir,
    serverUrl,
    media,
    pairingIterations: ITER,
    minBackoffMs: 20,
    maxBackoffMs: 200,
    events: { upload: false },
    onPairingWindow: window,
    ...extra,
  });
}

/** The device's access-log alerts so far, as `alert:code` (after a flush). */
export async function logAlerts(agent: Agent): Promise<string[]> {
  await agent.accessLog.flush();
  const out: string[] = [];
  for (let i = 0; i < agent.accessLog.size; i++) {
    const e = decodeLogEntry(agent.accessLog.entry(i));
    if (e.k === 'alert' && 'code' in e) out.push(`${e.alert}:${e.code}`);
  }
  return out;
}
