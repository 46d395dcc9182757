/** Shared fixtures for the pairing tests (not a test file itself). */
import { sha256 } from '@noble/hashes/sha2.js';
import { b32, concat, utf8 } from '../../src/bytes.js';
import { type CryptoEnv, fixedEnv } from '../../src/crypto/env.js';
import { WebCryptoSigner } from '../../src/crypto/primitives.js';
import { HearthError } from '../../src/errors.js';
import {
  type AttemptPolicy,
  createPairingRecord,
  DevicePairing,
  type DevicePairingResult,
  generateManualCode,
  generateQrSecret,
  type ManualCode,
  PairingGuard,
  type PairingMethod,
  pairingErrorMessage,
  type VerifierRecord,
  ViewerPairing,
  type ViewerPairingResult,
} from '../../src/pairing/index.js';

/** PBKDF2 iterations in tests (both sides must agree; production uses PAIRING_PBKDF_ITERATIONS). */
export const ITER = 2;

/** Stand-in for ids.ts: `hdid_` + base32(first 20 bytes of SHA-256(label || key)). */
export function fakeDeviceId(pub: Uint8Array): string {
  return `hdid_${b32(sha256(concat(utf8('hearth/v1/device-id'), pub)).subarray(0, 20))}`;
}

export interface Fixture {
  env: ReturnType<typeof fixedEnv>;
  deviceSigner: WebCryptoSigner;
  viewerSigner: WebCryptoSigner;
  otherSigner: WebCryptoSigner;
  deviceId: string;
  qrSecret: Uint8Array;
  code: ManualCode;
  records: Record<PairingMethod, VerifierRecord>;
}

let cached: Promise<Fixture> | undefined;

/** Keys, secrets and records (computed once; each test builds its own guard and sessions). */
export function fixture(): Promise<Fixture> {
  cached ??= (async () => {
    const env = fixedEnv(7);
    const deviceSigner = await WebCryptoSigner.fromSeed(env.random(32));
    const viewerSigner = await WebCryptoSigner.fromSeed(env.random(32));
    const otherSigner = await WebCryptoSigner.fromSeed(env.random(32));
    const deviceId = fakeDeviceId(deviceSigner.publicKey);
    const qrSecret = generateQrSecret(env);
    const code = generateManualCode(env);
    const records = {
      qr: await createPairingRecord(deviceId, 'qr', qrSecret, ITER),
      code: await createPairingRecord(deviceId, 'code', code.secret, ITER),
    };
    return { env, deviceSigner, viewerSigner, otherSigner, deviceId, qrSecret, code, records };
  })();
  return cached;
}

export function newGuard(
  env: CryptoEnv,
  opts: { open?: boolean; windowMs?: number; policies?: Partial<Record<PairingMethod, AttemptPolicy>> } = {},
): PairingGuard {
  const g = new PairingGuard({
    env,
    ...(opts.policies ? { policies: opts.policies } : {}),
    ...(opts.windowMs ? { windowMs: opts.windowMs } : {}),
  });
  if (opts.open ?? true) g.open();
  return g;
}

export function newDevice(
  f: Fixture,
  guard: PairingGuard,
  env: CryptoEnv = f.env,
  signer = f.deviceSigner,
): DevicePairing {
  return new DevicePairing({ deviceId: f.deviceId, records: f.records, signer, guard, env });
}

export function newViewer(
  f: Fixture,
  opts: {
    method?: PairingMethod;
    secret?: Uint8Array;
    deviceId?: string;
    deviceIdMatches?: (k: Uint8Array) => boolean;
    env?: CryptoEnv;
  } = {},
): ViewerPairing {
  const method = opts.method ?? 'qr';
  const deviceId = opts.deviceId ?? f.deviceId;
  return new ViewerPairing({
    deviceId,
    method,
    secret: opts.secret ?? (method === 'qr' ? f.qrSecret : f.code.secret),
    signer: f.viewerSigner,
    deviceIdMatches: opts.deviceIdMatches ?? ((k) => fakeDeviceId(k) === deviceId),
    env: opts.env ?? f.env,
    iterations: ITER,
  });
}

export interface RunOutcome {
  device?: DevicePairingResult;
  viewer?: ViewerPairingResult;
  /** First error, and which side raised it. */
  error?: HearthError;
  errorSide?: 'device' | 'viewer';
  /** Error the other side raised on receiving pair/error, if any. */
  peerError?: HearthError;
  /** Wire messages in order (after tampering). */
  wire: string[];
}

/**
 * Drive a viewer and a device through the protocol over JSON text. `tamper(step, json)` may rewrite
 * message number `step` (0 start, 1 challenge, 2 confirm, 3 done) before delivery. On an error the
 * failing side's pair/error is delivered to the other side.
 */
export async function run(
  viewer: ViewerPairing,
  device: DevicePairing,
  tamper: (step: number, json: string) => string = (_s, j) => j,
): Promise<RunOutcome> {
  const out: RunOutcome = { wire: [] };
  let step = 0;
  const deliver = async (to: 'device' | 'viewer', json: string) => {
    const j = tamper(step++, json);
    out.wire.push(j);
    try {
      const r = to === 'device' ? await device.receive(j) : await viewer.receive(j);
      if (to === 'device' && r.result) out.device = r.result as DevicePairingResult;
      if (to === 'viewer' && r.result) out.viewer = r.result as ViewerPairingResult;
      return r.send.map((m) => JSON.stringify(m));
    } catch (e) {
      if (!(e instanceof HearthError)) throw e;
      out.error = e;
      out.errorSide = to;
      const err = JSON.stringify(pairingErrorMessage(e));
      try {
        if (to === 'device') await viewer.receive(err);
        else await device.receive(err);
      } catch (pe) {
        if (!(pe instanceof HearthError)) throw pe;
        out.peerError = pe;
      }
      return undefined;
    }
  };
  const s = await viewer.start();
  let pending: { to: 'device' | 'viewer'; json: string }[] = s.send.map((m) => ({
    to: 'device',
    json: JSON.stringify(m),
  }));
  while (pending.length > 0) {
    const next = pending.shift()!;
    const replies = await deliver(next.to, next.json);
    if (!replies) break;
    const back = next.to === 'device' ? 'viewer' : 'device';
    pending = [...pending, ...replies.map((json) => ({ to: back as 'device' | 'viewer', json }))];
  }
  return out;
}
