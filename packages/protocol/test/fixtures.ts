/** Shared fixtures for the protocol-core tests (not a test file itself). */
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import { deviceIdFromKey } from '../src/ids.js';

/** An SDP with one DTLS fingerprint (session level and media level agree). */
export function sdpWith(fp: string, extra = ''): string {
  return [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    `a=fingerprint:sha-256 ${fp}`,
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'c=IN IP4 0.0.0.0',
    `a=fingerprint:sha-256 ${fp}`,
    'a=setup:actpass',
    'a=rtpmap:96 H264/90000',
    extra,
  ]
    .filter(Boolean)
    .join('\r\n')
    .concat('\r\n');
}

/** A colon-separated SHA-256 fingerprint made of one repeated byte. */
export function fp(byte: number): string {
  return Array.from({ length: 32 }, () => byte.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

/** Deterministic keys: device, owner, a member, a stranger, another device, a second owner, a recovery key. */
export async function keys() {
  const seed = (n: number) => new Uint8Array(32).fill(n);
  const device = await WebCryptoSigner.fromSeed(seed(1));
  const owner = await WebCryptoSigner.fromSeed(seed(2));
  const member = await WebCryptoSigner.fromSeed(seed(3));
  const stranger = await WebCryptoSigner.fromSeed(seed(4));
  const otherDevice = await WebCryptoSigner.fromSeed(seed(5));
  const owner2 = await WebCryptoSigner.fromSeed(seed(6));
  const recovery = await WebCryptoSigner.fromSeed(seed(8));
  return {
    owner2,
    recovery,
    device,
    owner,
    member,
    stranger,
    otherDevice,
    deviceId: deviceIdFromKey(device.publicKey),
    env: fixedEnv(7),
  };
}
