/**
 * Thin wrappers over WebCrypto (`globalThis.crypto.subtle`, present in Node >= 20 and in browsers):
 * SHA-256, HMAC-SHA-256, HKDF-SHA-256, AES-256-GCM, Ed25519 and X25519. One code path everywhere,
 * native speed. Every derived key gets its own purpose label (see {@link label}).
 */
import { ab, concat, utf8 } from '../bytes.js';
import { ProtocolError, VerificationError } from '../errors.js';

const subtle = (): SubtleCrypto => {
  const s = globalThis.crypto?.subtle;
  if (!s)
    throw new Error('WebCrypto (crypto.subtle) is not available: use Node >= 20 or a secure browser context');
  return s;
};

/** Purpose label for domain separation: `hearth/v1/<purpose>`. */
export function label(purpose: string): string {
  return `hearth/v1/${purpose}`;
}

/** SHA-256. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', ab(data)));
}

/** HMAC-SHA-256. */
export async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await subtle().importKey('raw', ab(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', k, ab(data)));
}

/** Verify an HMAC-SHA-256 tag in constant time (WebCrypto's verify is constant-time). */
export async function hmacSha256Verify(key: Uint8Array, data: Uint8Array, tag: Uint8Array): Promise<boolean> {
  const k = await subtle().importKey('raw', ab(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return subtle().verify('HMAC', k, ab(tag), ab(data));
}

/** HKDF-SHA-256 (RFC 5869). `salt` may be empty (then HashLen zero bytes, per the RFC). */
export async function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const k = await subtle().importKey('raw', ab(ikm), 'HKDF', false, ['deriveBits']);
  const bits = await subtle().deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: ab(salt), info: ab(info) },
    k,
    length * 8,
  );
  return new Uint8Array(bits);
}

/** PBKDF2-HMAC-SHA-256. */
export async function pbkdf2Sha256(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Promise<Uint8Array> {
  const k = await subtle().importKey('raw', ab(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle().deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt: ab(salt), iterations },
    k,
    length * 8,
  );
  return new Uint8Array(bits);
}

/** AES-256-GCM encrypt; returns ciphertext || 16-byte tag. */
export async function aesGcmEncrypt(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = new Uint8Array(),
): Promise<Uint8Array> {
  if (key.length !== 32 || iv.length !== 12)
    throw new RangeError('AES-256-GCM needs a 32-byte key and a 12-byte IV');
  const k = await subtle().importKey('raw', ab(key), 'AES-GCM', false, ['encrypt']);
  return new Uint8Array(
    await subtle().encrypt({ name: 'AES-GCM', iv: ab(iv), additionalData: ab(aad) }, k, ab(plaintext)),
  );
}

/** AES-256-GCM decrypt; a bad tag raises VerificationError E_DECRYPT. */
export async function aesGcmDecrypt(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array = new Uint8Array(),
): Promise<Uint8Array> {
  if (key.length !== 32 || iv.length !== 12)
    throw new RangeError('AES-256-GCM needs a 32-byte key and a 12-byte IV');
  if (ciphertext.length < 16) throw new ProtocolError('E_DECODE', 'ciphertext shorter than the GCM tag');
  const k = await subtle().importKey('raw', ab(key), 'AES-GCM', false, ['decrypt']);
  try {
    return new Uint8Array(
      await subtle().decrypt({ name: 'AES-GCM', iv: ab(iv), additionalData: ab(aad) }, k, ab(ciphertext)),
    );
  } catch {
    throw new VerificationError('E_DECRYPT');
  }
}

// ---------------------------------------------------------------- Ed25519

/** Anything that can produce Ed25519 signatures: a WebCrypto key pair (extractable or not), an HSM... */
export interface Signer {
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Sign `message` (pure Ed25519, RFC 8032). */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** An Ed25519 key pair held in WebCrypto. */
export class WebCryptoSigner implements Signer {
  private constructor(
    readonly publicKey: Uint8Array,
    private readonly privateKey: CryptoKey,
  ) {}

  /** Generate a key pair. `extractable` false keeps the private key inside WebCrypto (browsers: IndexedDB-storable). */
  static async generate(extractable = false): Promise<WebCryptoSigner> {
    const kp = (await subtle().generateKey('Ed25519', extractable, ['sign', 'verify'])) as CryptoKeyPair;
    const pub = new Uint8Array(await subtle().exportKey('raw', kp.publicKey));
    return new WebCryptoSigner(pub, kp.privateKey);
  }

  /** Wrap an existing CryptoKey pair (e.g. loaded from IndexedDB). */
  static async fromKeyPair(kp: CryptoKeyPair): Promise<WebCryptoSigner> {
    const pub = new Uint8Array(await subtle().exportKey('raw', kp.publicKey));
    return new WebCryptoSigner(pub, kp.privateKey);
  }

  /** Import a 32-byte Ed25519 seed (RFC 8032 private key) as PKCS#8. */
  static async fromSeed(seed: Uint8Array, extractable = false): Promise<WebCryptoSigner> {
    if (seed.length !== 32) throw new RangeError('Ed25519 seed must be 32 bytes');
    const pkcs8 = concat(PKCS8_ED25519_PREFIX, seed);
    const priv = await subtle().importKey('pkcs8', ab(pkcs8), 'Ed25519', true, ['sign']);
    // Derive the public key through a JWK round trip (WebCrypto has no "public from private").
    const jwk = await subtle().exportKey('jwk', priv);
    if (!jwk.x) throw new Error('Ed25519 JWK export lacks x');
    const pub = b64uToBytes(jwk.x);
    const key = extractable ? priv : await subtle().importKey('pkcs8', ab(pkcs8), 'Ed25519', false, ['sign']);
    pkcs8.fill(0);
    return new WebCryptoSigner(pub, key);
  }

  /** Export the 32-byte seed (only for extractable keys). Callers must store it with mode 0600. */
  async exportSeed(): Promise<Uint8Array> {
    const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', this.privateKey));
    return pkcs8.slice(pkcs8.length - 32);
  }

  /** The underlying private CryptoKey (for IndexedDB storage). */
  get cryptoKey(): CryptoKey {
    return this.privateKey;
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await subtle().sign('Ed25519', this.privateKey, ab(message)));
  }
}

const PKCS8_ED25519_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

function b64uToBytes(s: string): Uint8Array {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const verifyKeyCache = new Map<string, Promise<CryptoKey>>();
const VERIFY_CACHE_MAX = 4096;

/** Verify an Ed25519 signature. Returns false (never throws) for a bad key, signature or message. */
export async function ed25519Verify(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  let keyHex = '';
  for (const x of publicKey) keyHex += x.toString(16).padStart(2, '0');
  let kp = verifyKeyCache.get(keyHex);
  if (!kp) {
    kp = subtle().importKey('raw', ab(publicKey), 'Ed25519', false, ['verify']);
    if (verifyKeyCache.size >= VERIFY_CACHE_MAX)
      verifyKeyCache.delete(verifyKeyCache.keys().next().value as string);
    verifyKeyCache.set(keyHex, kp);
    kp.catch(() => verifyKeyCache.delete(keyHex));
  }
  try {
    return await subtle().verify('Ed25519', await kp, ab(signature), ab(message));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- X25519

/** X25519 key pair in WebCrypto. */
export interface X25519KeyPair {
  publicKey: Uint8Array;
  privateKey: CryptoKey;
}

/** Generate an X25519 key pair. */
export async function x25519Generate(): Promise<X25519KeyPair> {
  const kp = (await subtle().generateKey('X25519', false, ['deriveBits'])) as CryptoKeyPair;
  return {
    publicKey: new Uint8Array(await subtle().exportKey('raw', kp.publicKey)),
    privateKey: kp.privateKey,
  };
}

const PKCS8_X25519_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

/** Import a 32-byte X25519 scalar (RFC 7748). */
export async function x25519FromScalar(scalar: Uint8Array): Promise<CryptoKey> {
  if (scalar.length !== 32) throw new RangeError('X25519 scalar must be 32 bytes');
  return subtle().importKey('pkcs8', ab(concat(PKCS8_X25519_PREFIX, scalar)), 'X25519', false, [
    'deriveBits',
  ]);
}

/** X25519(priv, peerPublic). Rejects the all-zero output (small-order peer key). */
export async function x25519(privateKey: CryptoKey, peerPublic: Uint8Array): Promise<Uint8Array> {
  if (peerPublic.length !== 32) throw new ProtocolError('E_DECODE', 'X25519 public key must be 32 bytes');
  const pub = await subtle().importKey('raw', ab(peerPublic), 'X25519', false, []);
  let out: Uint8Array;
  try {
    out = new Uint8Array(await subtle().deriveBits({ name: 'X25519', public: pub }, privateKey, 256));
  } catch {
    throw new VerificationError('E_DECODE', 'X25519 with a small-order public key');
  }
  if (out.every((x) => x === 0))
    throw new VerificationError('E_DECODE', 'X25519 produced the all-zero secret');
  return out;
}

/** Encode a string label as bytes (for HKDF info). */
export function info(purpose: string): Uint8Array {
  return utf8(label(purpose));
}
