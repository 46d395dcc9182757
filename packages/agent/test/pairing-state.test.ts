// The pairing host's two extracted modules on their own: the state file (pairing.json) and the
// window's secrets.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ConfigError,
  type CryptoEnv,
  deviceIdFromKey,
  PairingGuard,
  parseManualCode,
  parseQrPayload,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import { loadPairingState, pairingStatePath, savePairingState } from '../src/device/pairing-state.js';
import { drawManualCode, PairingWindow } from '../src/device/pairing-window.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'hearth-pstate-'));
  dirs.push(d);
  return d;
}
const env: CryptoEnv = { random: systemEnv.random, now: () => 1_800_000_000_000 };
const zero = (b: Uint8Array) => b.every((x) => x === 0);

function spentGuard(): PairingGuard {
  const g = new PairingGuard({ env });
  g.open();
  g.charge('code');
  g.recordFailure('code');
  return g;
}

describe('pairing state file', () => {
  it('saves with mode 0600 and loads what a guard restores the same budget from', () => {
    const path = pairingStatePath(tmp());
    const g = spentGuard();
    savePairingState(path, g.snapshot());
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const loaded = loadPairingState(path);
    assert.ok(loaded);
    assert.deepEqual(new PairingGuard({ env, restore: loaded }).snapshot(), g.snapshot());
  });

  it('no file: undefined (first start)', () => {
    assert.equal(loadPairingState(pairingStatePath(tmp())), undefined);
  });

  it('a tampered or corrupt file stops the agent (E_CONFIG) instead of refilling the budget', () => {
    const path = pairingStatePath(tmp());
    const snap = JSON.parse(JSON.stringify(spentGuard().snapshot()));
    const variants = [
      '{"open": true',
      JSON.stringify({ ...snap, methods: { qr: snap.methods.qr } }),
      JSON.stringify({ ...snap, methods: { ...snap.methods, code: { ...snap.methods.code, attempts: -5 } } }),
      JSON.stringify({ ...snap, pad: 'x'.repeat(5000) }),
    ];
    for (const text of variants) {
      writeFileSync(path, text, { mode: 0o600 });
      assert.throws(
        () => loadPairingState(path),
        (e) => e instanceof ConfigError && e.code === 'E_CONFIG',
        text.slice(0, 60),
      );
    }
  });

  it('a file others can read is refused', () => {
    const path = pairingStatePath(tmp());
    savePairingState(path, spentGuard().snapshot());
    chmodSync(path, 0o644);
    assert.throws(
      () => loadPairingState(path),
      (e) => e instanceof ConfigError,
    );
  });
});

describe('pairing window secrets', () => {
  async function opts() {
    const device = await WebCryptoSigner.generate();
    return {
      deviceId: deviceIdFromKey(device.publicKey),
      env,
      serverUrl: 'http://127.0.0.1:8443',
      iterations: 2,
    };
  }

  it('opens with a QR payload and a manual code for this device, and wipe() zeroes every record', async () => {
    const o = await opts();
    const w = await PairingWindow.open(o, () => 1_800_000_600_000);
    assert.ok(w);
    const info = w.info;
    assert.equal(info.expiresAt, 1_800_000_600_000);
    assert.equal(parseQrPayload(info.qrUrl, { allowInsecure: true }).deviceId, o.deviceId);
    assert.equal(parseManualCode(info.manualCode).tag, w.tag);
    const { qr, code } = w.records;
    assert.ok(qr && code && !zero(qr.w0) && !zero(code.L));
    w.wipe();
    assert.ok(zero(qr.w0) && zero(qr.L) && zero(code.w0) && zero(code.L));
  });

  it('closed while drawing: no window, and nothing kept', async () => {
    assert.equal(await PairingWindow.open(await opts(), () => undefined), undefined);
  });

  it('replaceCode wipes the old record, keeps the QR, and shows the new code and tag', async () => {
    const o = await opts();
    const w = (await PairingWindow.open(o, () => 1_800_000_600_000))!;
    const before = { rec: w.records.code!, info: w.info, tag: w.tag, qr: w.records.qr };
    const fresh = await drawManualCode(o);
    w.replaceCode(fresh);
    assert.ok(zero(before.rec.w0) && zero(before.rec.L));
    assert.equal(w.records.code, fresh.record);
    assert.equal(w.records.qr, before.qr);
    assert.equal(w.tag, fresh.tag);
    assert.equal(w.info.manualCode, fresh.manualCode);
    assert.equal(w.info.qrUrl, before.info.qrUrl);
    w.wipe();
  });
});
