/**
 * The viewer's pairing adapter against the protocol's real device machine (SPAKE2+, RFC 9383),
 * both sides in memory: the manual code and the QR link pair and pin the device key; a wrong code,
 * a typo and a plain-http link to a non-loopback host do not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createPairingRecord,
  DevicePairing,
  deviceIdFromKey,
  encodeId,
  encodeManualCode,
  encodeQrPayload,
  generateManualCode,
  generateQrSecret,
  PairingGuard,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import {
  defaultPairingAdapter,
  type PairingMachinePort,
  type PairingOutcome,
} from '../src/pairing/adapter.js';

async function device() {
  const signer = await WebCryptoSigner.generate();
  const deviceId = deviceIdFromKey(signer.publicKey);
  const code = generateManualCode(systemEnv);
  const qr = generateQrSecret(systemEnv);
  const codeText = encodeManualCode(code);
  const link = encodeQrPayload({ server: '127.0.0.1:8443', deviceId, secret: qr }, { allowInsecure: true });
  const records = {
    code: await createPairingRecord(deviceId, 'code', code.secret),
    qr: await createPairingRecord(deviceId, 'qr', qr),
  };
  const guard = new PairingGuard({ env: systemEnv });
  guard.open();
  return { signer, deviceId, codeText, code, link, records, guard };
}

/** Run the viewer machine against a fresh device session until it settles. */
async function run(m: PairingMachinePort, dev: Awaited<ReturnType<typeof device>>): Promise<PairingOutcome> {
  const d = new DevicePairing({
    deviceId: dev.deviceId,
    records: dev.records,
    signer: dev.signer,
    guard: dev.guard,
    env: systemEnv,
  });
  let out = await m.start();
  for (let i = 0; i < 4 && out.kind === 'send'; i++) {
    let reply: unknown;
    try {
      const step = await d.receive(out.m as Parameters<DevicePairing['receive']>[0]);
      reply = step.send[0];
    } catch (e) {
      reply = { t: 'pair/error', code: (e as { code: string }).code };
    }
    if (!reply) break;
    out = await m.receive(reply as { t: string });
  }
  return out;
}

describe('pairing adapter (real SPAKE2+ on both sides)', () => {
  it('pairs with the manual code and pins the device key', async () => {
    const dev = await device();
    const tag = defaultPairingAdapter.lookupTag(dev.codeText.toLowerCase());
    assert.equal(tag, dev.code.tag);
    const viewer = await WebCryptoSigner.generate();
    const m = defaultPairingAdapter.create({
      deviceId: dev.deviceId,
      code: dev.codeText,
      signer: viewer,
      env: systemEnv,
    });
    const out = await run(m, dev);
    assert.deepEqual(out, {
      kind: 'done',
      deviceKey: encodeId('deviceKey', dev.signer.publicKey),
      role: 'owner',
    });
  });

  it('pairs with the QR link (plain http allowed for a loopback server only)', async () => {
    const dev = await device();
    assert.deepEqual(defaultPairingAdapter.parseLink(dev.link), { deviceId: dev.deviceId });
    const viewer = await WebCryptoSigner.generate();
    const m = defaultPairingAdapter.create({
      deviceId: dev.deviceId,
      link: dev.link,
      signer: viewer,
      env: systemEnv,
    });
    const out = await run(m, dev);
    assert.equal(out.kind, 'done');
    assert.throws(
      () => defaultPairingAdapter.parseLink(dev.link.replace('127.0.0.1:8443', 'cams.example.org')),
      {
        code: 'E_DECODE',
      },
    );
  });

  it('a wrong code fails with E_BAD_CONFIRMATION and the device counts the attempt', async () => {
    const dev = await device();
    const wrong = { tag: dev.code.tag, secret: dev.code.secret.map((b) => b ^ 0x5a) };
    const viewer = await WebCryptoSigner.generate();
    const m = defaultPairingAdapter.create({
      deviceId: dev.deviceId,
      code: encodeManualCode(wrong),
      signer: viewer,
      env: systemEnv,
    });
    const out = await run(m, dev);
    assert.deepEqual(out, { kind: 'failed', code: 'E_BAD_CONFIRMATION' });
    // Once failed, the machine stays failed whatever arrives.
    assert.equal((await m.receive({ t: 'pair/done', box: 'x' })).kind, 'failed');
    assert.equal(dev.guard.snapshot().methods.code.attempts, 1);
  });

  it('a typo is caught by the check character before anything is sent', () => {
    const dev = { code: generateManualCode(systemEnv) };
    const text = encodeManualCode(dev.code);
    const last = text.at(-1)!;
    const typo = text.slice(0, -1) + (last === '0' ? '1' : '0');
    assert.throws(() => defaultPairingAdapter.lookupTag(typo), { code: 'E_DECODE' });
    assert.throws(() => defaultPairingAdapter.lookupTag('ABCD-EFGH-JKLM'), { code: 'E_SCHEMA' });
    assert.throws(() => defaultPairingAdapter.lookupTag('x'.repeat(100)), { code: 'E_TOO_LARGE' });
  });
});
