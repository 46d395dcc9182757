// PairingHost against the protocol's real ViewerPairing over an in-memory transport.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  Acl,
  type CryptoEnv,
  deviceIdFromKey,
  encodeId,
  type HearthError,
  type PairingMessage,
  type PairingMethod,
  pairingErrorMessage,
  parseManualCode,
  parseQrPayload,
  systemEnv,
  ViewerPairing,
  type ViewerPairingResult,
  WebCryptoSigner,
} from '@hearth/protocol';
import { loadAcl, saveAcl } from '../src/device/acl-store.js';
import {
  type PairedViewer,
  type PairingEvent,
  PairingHost,
  type PairingHostOptions,
  type PairingInfo,
  pairingStatePath,
} from '../src/device/pairing-host.js';

const ITER = 2;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function clock(start = 1_800_000_000_000): CryptoEnv & { advance(ms: number): void } {
  let t = start;
  return {
    random: systemEnv.random,
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

interface Rig {
  host: PairingHost;
  env: ReturnType<typeof clock>;
  device: WebCryptoSigner;
  deviceId: string;
  dataDir: string;
  outbox: Map<string, PairingMessage[]>;
  tags: (string | null)[];
  windows: PairingInfo[];
  events: PairingEvent[];
  paired: PairedViewer[];
  acl(): Acl | undefined;
  restart(extra?: RigOptions): Promise<Rig>;
}

type RigOptions = Omit<Partial<PairingHostOptions>, 'env'> & {
  device?: WebCryptoSigner;
  env?: ReturnType<typeof clock>;
  dataDir?: string;
  acl?: Acl;
};

async function rig(o: RigOptions = {}): Promise<Rig> {
  const device = o.device ?? (await WebCryptoSigner.generate());
  const deviceId = deviceIdFromKey(device.publicKey);
  const env = o.env ?? clock();
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'hearth-pairing-'));
  if (!o.dataDir) dirs.push(dataDir);
  let acl = o.acl ?? (await loadAcl(dataDir, env.now()));
  const outbox = new Map<string, PairingMessage[]>();
  const r: Rig = {
    env,
    device,
    deviceId,
    dataDir,
    outbox,
    tags: [],
    windows: [],
    events: [],
    paired: [],
    acl: () => acl,
    host: undefined as unknown as PairingHost,
    restart: async (extra = {}) => {
      r.host.dispose();
      return rig({ device, env, dataDir, ...extra });
    },
  };
  r.host = new PairingHost({
    deviceId,
    signer: device,
    env,
    serverUrl: 'http://127.0.0.1:8443',
    iterations: ITER,
    stateFile: pairingStatePath(dataDir),
    send: (to, m) => {
      const q = outbox.get(to) ?? [];
      q.push(m);
      outbox.set(to, q);
    },
    register: (tag) => void r.tags.push(tag),
    isPaired: () => acl !== undefined,
    onPaired: (v) => {
      r.paired.push(v);
      if (v.role === 'owner' && !acl) {
        const next = Acl.create(deviceId, v.viewerKey);
        saveAcl(dataDir, next);
        acl = next;
      }
    },
    onWindow: (i) => void r.windows.push(i),
    onEvent: (e) => void r.events.push(e),
    ...o,
  });
  await r.host.start();
  return r;
}

interface Viewer {
  signer: WebCryptoSigner;
  id: string;
}
async function viewer(): Promise<Viewer> {
  const signer = await WebCryptoSigner.generate();
  return { signer, id: encodeId('userKey', signer.publicKey) };
}

function secretOf(info: PairingInfo, method: PairingMethod): Uint8Array {
  return method === 'qr'
    ? parseQrPayload(info.qrUrl, { allowInsecure: true }).secret
    : parseManualCode(info.manualCode).secret;
}

/** Run one pairing: the viewer's machine against the host, message by message. */
async function pair(
  r: Rig,
  v: Viewer,
  method: PairingMethod,
  secret: Uint8Array,
  o: { reportFailure?: boolean } = {},
): Promise<{ result?: ViewerPairingResult; error?: HearthError; fromDevice: PairingMessage[] }> {
  const vp = new ViewerPairing({
    deviceId: r.deviceId,
    method,
    secret,
    signer: v.signer,
    env: systemEnv,
    iterations: ITER,
    deviceIdMatches: (k) => deviceIdFromKey(k) === r.deviceId,
  });
  const fromDevice: PairingMessage[] = [];
  let step = await vp.start();
  for (let i = 0; i < 4; i++) {
    const out = step.send[0];
    if (!out) break;
    await r.host.onMessage(v.id, out);
    const reply = r.outbox.get(v.id)?.shift();
    assert.ok(reply, 'the device answered');
    fromDevice.push(reply);
    try {
      step = await vp.receive(reply);
    } catch (e) {
      if (o.reportFailure && reply.t !== 'pair/error') await r.host.onMessage(v.id, pairingErrorMessage(e));
      return { error: e as HearthError, fromDevice };
    }
    if (step.result) return { result: step.result, fromDevice };
  }
  throw new Error('pairing did not finish');
}

describe('PairingHost', () => {
  it('opens a window on first start: QR URL, manual code, tag registered, state persisted 0600', async () => {
    const r = await rig();
    const info = r.host.info();
    assert.ok(info);
    assert.equal(r.windows.length, 1);
    assert.match(
      info.qrUrl,
      new RegExp(`^http://127\\.0\\.0\\.1:8443/pair#v=1&d=${r.deviceId}&s=[a-z2-7]{26}$`),
    );
    assert.match(info.manualCode, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}$/);
    assert.equal(info.expiresAt, r.env.now() + 10 * 60_000);
    assert.deepEqual(r.tags, [parseManualCode(info.manualCode).tag]);
    assert.equal(statSync(pairingStatePath(r.dataDir)).mode & 0o777, 0o600);
    r.host.dispose();
  });

  for (const method of ['code', 'qr'] as const) {
    it(`happy path via ${method}: the viewer becomes owner, the ACL is persisted, the window closes`, async () => {
      const r = await rig();
      const v = await viewer();
      const info = r.host.info()!;
      const out = await pair(r, v, method, secretOf(info, method));
      assert.ok(out.result, `paired (${out.error?.code})`);
      assert.equal(out.result.role, 'owner');
      assert.deepEqual(out.result.deviceKey, r.device.publicKey);
      assert.deepEqual(
        out.fromDevice.map((m) => m.t),
        ['pair/challenge', 'pair/done'],
      );
      assert.equal(r.paired.length, 1);
      assert.equal(r.paired[0]?.viewer, v.id);
      assert.equal(r.paired[0]?.sessionId, out.result.sessionId);
      const saved = await loadAcl(r.dataDir, r.env.now());
      assert.equal(saved?.owners[0], v.id);
      assert.equal(statSync(join(r.dataDir, 'acl.json')).mode & 0o777, 0o600);
      assert.equal(r.host.info(), undefined, 'window closed');
      assert.equal(r.tags.at(-1), null, 'lookup tag dropped');
      const snap = r.host.snapshot();
      assert.equal(snap.open, false);
      assert.equal(snap.closeReason, 'paired');
      assert.equal(snap.hasOwner, true);
      assert.ok(r.events.some((e) => e.kind === 'paired' && e.role === 'owner'));
      // A second viewer with the same secret finds the window closed.
      const late = await pair(r, await viewer(), method, secretOf(info, method));
      assert.equal(late.error?.code, 'E_PAIRING_CLOSED');
      r.host.dispose();
    });
  }

  it('a wrong code is refused and counted; the viewer never gets the device key', async () => {
    const r = await rig();
    const right = parseManualCode(r.host.info()!.manualCode);
    const wrong = right.secret.map((b) => b ^ 0x5a);
    const v = await viewer();
    const out = await pair(r, v, 'code', wrong, { reportFailure: true });
    assert.equal(out.error?.code, 'E_BAD_CONFIRMATION');
    const c = r.host.snapshot().methods.code;
    assert.equal(c.attempts, 1);
    assert.equal(c.failures, 1);
    assert.equal(c.remaining, 4);
    assert.equal(r.paired.length, 0);
    assert.ok(r.host.info(), 'window still open');
    assert.ok(
      r.events.some(
        (e) => e.kind === 'pairing-failed' && e.code === 'E_BAD_CONFIRMATION' && e.remaining === 4,
      ),
    );
    // The right code still works afterwards.
    const ok = await pair(r, v, 'code', parseManualCode(r.host.info()!.manualCode).secret);
    assert.equal(ok.result?.role, 'owner');
    r.host.dispose();
  });

  it('backs off, then locks the manual code after 5 attempts; the QR method keeps its own budget', async () => {
    const r = await rig();
    const info = r.host.info()!;
    const wrong = secretOf(info, 'code').map((b) => b ^ 1);
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const out = await pair(r, await viewer(), 'code', wrong.slice());
      codes.push(out.error?.code ?? 'none');
      if (i === 2) {
        // Third attempt right after the second: rate limited, with a retry time, not charged.
        const early = await pair(r, await viewer(), 'code', wrong.slice());
        assert.equal(early.error?.code, 'E_RATE_LIMITED');
        assert.equal(early.fromDevice[0]?.t, 'pair/error');
        assert.ok((early.fromDevice[0] as { retryAt?: number }).retryAt! > r.env.now());
      }
      r.env.advance(61_000);
    }
    assert.deepEqual(codes, Array(5).fill('E_BAD_CONFIRMATION'));
    assert.equal(r.host.snapshot().methods.code.locked, true);
    const locked = await pair(r, await viewer(), 'code', secretOf(info, 'code'));
    assert.equal(locked.error?.code, 'E_LOCKED', 'even the right code is refused once locked');
    const qr = await pair(r, await viewer(), 'qr', secretOf(r.host.info()!, 'qr'));
    assert.equal(qr.result?.role, 'owner');
    r.host.dispose();
  });

  it('the same viewer retrying wrong codes back to back is rate limited, then locked after 5', async () => {
    const r = await rig();
    const v = await viewer();
    const wrong = secretOf(r.host.info()!, 'code').map((b) => b ^ 1);
    const codes: string[] = [];
    for (let i = 0; i < 12 && codes.at(-1) !== 'E_LOCKED'; i++) {
      const out = await pair(r, v, 'code', wrong.slice());
      codes.push(out.error?.code ?? 'none');
      if (out.error?.code === 'E_RATE_LIMITED') r.env.advance(61_000);
    }
    // Two free attempts, then each one must wait; a rate-limited start is not charged.
    const [BC, RL] = ['E_BAD_CONFIRMATION', 'E_RATE_LIMITED'];
    assert.deepEqual(codes, [BC, BC, RL, BC, RL, BC, RL, BC, 'E_LOCKED']);
    assert.equal(r.host.snapshot().methods.code.attempts, 5);
    r.host.dispose();
  });

  it('a restart keeps the attempt budget and the closing time; only the secrets are new', async () => {
    let r = await rig({ windowMs: 30 * 60_000 });
    const first = r.host.info()!;
    const wrong = secretOf(first, 'code').map((b) => b ^ 1);
    for (let i = 0; i < 5; i++) {
      await pair(r, await viewer(), 'code', wrong.slice());
      r.env.advance(61_000);
    }
    assert.equal(r.host.snapshot().methods.code.locked, true);
    r = await r.restart({ windowMs: 30 * 60_000 });
    const again = r.host.info()!;
    assert.ok(again, 'the window continues');
    assert.equal(again.expiresAt, first.expiresAt);
    assert.notEqual(again.manualCode, first.manualCode);
    assert.notEqual(again.qrUrl, first.qrUrl);
    assert.ok(r.events.some((e) => e.kind === 'pairing-window-opened' && e.resumed));
    const s = r.host.snapshot().methods.code;
    assert.equal(s.attempts, 5);
    assert.equal(s.locked, true);
    const out = await pair(r, await viewer(), 'code', secretOf(again, 'code'));
    assert.equal(out.error?.code, 'E_LOCKED', 'the restart did not refill the budget');
    r.host.dispose();
  });

  it('an expired window closes (tag dropped); a restart of an unpaired device opens a fresh one', async () => {
    let r = await rig();
    const info = r.host.info()!;
    r.env.advance(10 * 60_000 + 1);
    assert.equal(r.host.info(), undefined);
    assert.equal(r.tags.at(-1), null);
    const out = await pair(r, await viewer(), 'qr', secretOf(info, 'qr'));
    assert.equal(out.error?.code, 'E_PAIRING_CLOSED');
    r = await r.restart();
    const fresh = r.host.info();
    assert.ok(fresh);
    assert.equal(fresh.expiresAt, r.env.now() + 10 * 60_000);
    assert.equal(r.host.snapshot().methods.qr.attempts, 0);
    r.host.dispose();
  });

  it('a paired device opens no window on start; open() (the physical action) opens one for members', async () => {
    let r = await rig();
    const owner = await viewer();
    assert.equal((await pair(r, owner, 'qr', secretOf(r.host.info()!, 'qr'))).result?.role, 'owner');
    r = await r.restart();
    assert.equal(r.host.info(), undefined);
    assert.equal(r.windows.length, 0);
    const info = await r.host.open();
    assert.equal(r.windows.length, 1);
    const m = await pair(r, await viewer(), 'code', secretOf(info, 'code'));
    assert.equal(m.result?.role, 'member');
    assert.equal(r.acl()?.owners[0], owner.id, 'the owner is unchanged');
    r.host.dispose();
  });

  it('a device whose ACL is gone (crash before it was saved, or a reset) pairs an owner again', async () => {
    let r = await rig();
    assert.equal((await pair(r, await viewer(), 'qr', secretOf(r.host.info()!, 'qr'))).result?.role, 'owner');
    rmSync(join(r.dataDir, 'acl.json'));
    r = await r.restart();
    const info = r.host.info();
    assert.ok(info, 'a window opens');
    assert.equal(r.host.snapshot().role, 'owner');
    assert.equal((await pair(r, await viewer(), 'code', secretOf(info, 'code'))).result?.role, 'owner');
    r.host.dispose();
  });

  it('a lookup tag the server refuses as taken gets a new manual code (same QR)', async () => {
    const r = await rig();
    const before = r.host.info()!;
    await r.host.onTagTaken();
    const after = r.host.info()!;
    assert.notEqual(after.manualCode, before.manualCode);
    assert.equal(after.qrUrl, before.qrUrl);
    assert.equal(r.windows.length, 2);
    assert.deepEqual(r.windows.at(-1), after);
    assert.equal(r.tags.at(-1), parseManualCode(after.manualCode).tag);
    const stale = await pair(r, await viewer(), 'code', secretOf(before, 'code'));
    assert.equal(stale.error?.code, 'E_BAD_CONFIRMATION', 'the old code is gone');
    r.env.advance(61_000);
    const ok = await pair(r, await viewer(), 'code', secretOf(after, 'code'));
    assert.equal(ok.result?.role, 'owner');
    r.host.dispose();
  });

  it('answers junk and out-of-order messages with pair/error, and re-registers the tag on reconnect', async () => {
    const r = await rig();
    const v = await viewer();
    await r.host.onMessage(v.id, { t: 'pair/confirm', confirmP: 'x' });
    assert.deepEqual(r.outbox.get(v.id)?.shift(), { t: 'pair/error', code: 'E_SCHEMA' });
    await r.host.onMessage(v.id, { t: 'pair/done', box: 'A'.repeat(40) });
    assert.deepEqual(r.outbox.get(v.id)?.shift(), { t: 'pair/error', code: 'E_BAD_STATE' });
    await r.host.onMessage(v.id, { t: 'pair/error', code: 'E_TIMEOUT' });
    assert.equal(r.outbox.get(v.id)?.length, 0, 'no reply to an error');
    const n = r.tags.length;
    r.host.reregister();
    assert.equal(r.tags.length, n + 1);
    assert.equal(r.tags.at(-1), parseManualCode(r.host.info()!.manualCode).tag);
    r.host.dispose();
  });
});
