/**
 * The one key file format for Hearth's Ed25519 identities (the agent's `device.key`, the server's
 * `server.key`): a PKCS#8 private key in PEM, the form `openssl genpkey -algorithm ed25519`
 * writes and `openssl pkey -in FILE -noout -text` reads.
 *
 * ```
 * -----BEGIN PRIVATE KEY-----
 * MC4CAQAwBQYDK2VwBCIEI<32-byte seed, base64>
 * -----END PRIVATE KEY-----
 * ```
 *
 * Two older formats still load and are rewritten in this one (atomically) on first load:
 * the agent's 32 raw seed bytes, and the server's seed in base64url on one line.
 */
import { ConfigError, fromB64u, systemEnv, WebCryptoSigner } from '@hearth/protocol';
import { readPrivateFile, writePrivateFile } from './private-file.js';

/** DER prefix of a PKCS#8 v1 Ed25519 private key (RFC 8410): the 32-byte seed follows. */
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
const PEM_BEGIN = '-----BEGIN PRIVATE KEY-----';
const PEM_END = '-----END PRIVATE KEY-----';
/** Larger than any key file in any of the formats (a PEM key is 119 bytes). */
const MAX_KEY_FILE = 4096;

/** Which format a key file was in. */
export type KeyFileFormat = 'pkcs8-pem' | 'legacy-raw-seed' | 'legacy-b64u-seed';

/** Encode an Ed25519 seed as the key file text. */
export function encodeKeyFile(seed: Uint8Array): string {
  if (seed.length !== 32) throw new RangeError('an Ed25519 seed is 32 bytes');
  const der = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
  der.set(PKCS8_ED25519_PREFIX);
  der.set(seed, PKCS8_ED25519_PREFIX.length);
  const text = `${PEM_BEGIN}\n${Buffer.from(der).toString('base64')}\n${PEM_END}\n`;
  der.fill(0);
  return text;
}

function wrongFormat(path: string, what: string): ConfigError {
  return new ConfigError(
    'E_CONFIG',
    `${path} is not a Hearth key file (${what}); expected an Ed25519 private key in PKCS#8 PEM ("${PEM_BEGIN}"). Restore the right file, or delete it to create a new identity (paired viewers will then have to pair again)`,
  );
}

/**
 * Decode a key file's bytes (any of the three formats) to its 32-byte seed. `path` only names the
 * file in errors.
 */
export function decodeKeyFile(bytes: Uint8Array, path: string): { seed: Uint8Array; format: KeyFileFormat } {
  if (bytes.length > MAX_KEY_FILE) throw wrongFormat(path, `${bytes.length} bytes, too large`);
  const text = Buffer.from(bytes).toString('latin1');
  if (text.trimStart().startsWith('-----BEGIN')) {
    const m = /^\s*-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\s*$/.exec(
      text,
    );
    if (!m) throw wrongFormat(path, 'a damaged PEM block');
    if (m[1] !== 'PRIVATE KEY') throw wrongFormat(path, `a PEM "${m[1]}", not a PKCS#8 "PRIVATE KEY"`);
    const b64 = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0)
      throw wrongFormat(path, 'bad base64 in the PEM block');
    const der = Buffer.from(b64, 'base64');
    const prefixOk =
      der.length === PKCS8_ED25519_PREFIX.length + 32 && PKCS8_ED25519_PREFIX.every((b, i) => der[i] === b);
    if (!prefixOk) {
      der.fill(0);
      throw wrongFormat(path, 'a PKCS#8 key that is not an Ed25519 key');
    }
    const seed = new Uint8Array(der.subarray(PKCS8_ED25519_PREFIX.length));
    der.fill(0);
    return { seed, format: 'pkcs8-pem' };
  }
  if (bytes.length === 32) return { seed: new Uint8Array(bytes), format: 'legacy-raw-seed' };
  const line = text.trim();
  if (/^[A-Za-z0-9_-]{43}$/.test(line)) {
    try {
      const seed = fromB64u(line, 32);
      if (seed.length === 32) return { seed, format: 'legacy-b64u-seed' };
    } catch {
      // falls through to the error
    }
  }
  throw wrongFormat(path, `${bytes.length} bytes in no known format`);
}

/** A loaded key. */
export interface LoadedKey {
  signer: WebCryptoSigner;
  /** True when the key was created by this call. */
  created: boolean;
  /** Set when the file was in an older format and has been rewritten in PKCS#8 PEM. */
  migratedFrom?: Exclude<KeyFileFormat, 'pkcs8-pem'>;
  /** Set when the file is in an older format and rewriting it failed (it still loaded). */
  migrationError?: string;
}

/**
 * Load the Ed25519 identity key at `path` (a private file: see readPrivateFile), creating it on
 * first start. A key in an older format is rewritten in the current one.
 */
export async function loadOrCreateKey(
  path: string,
  opts: { extractable?: boolean } = {},
): Promise<LoadedKey> {
  const raw = readPrivateFile(path);
  let seed: Uint8Array;
  let created = false;
  let migratedFrom: LoadedKey['migratedFrom'];
  let migrationError: string | undefined;
  if (raw) {
    let format: KeyFileFormat;
    try {
      ({ seed, format } = decodeKeyFile(raw, path));
    } finally {
      raw.fill(0);
    }
    if (format !== 'pkcs8-pem') {
      try {
        writePrivateFile(path, encodeKeyFile(seed));
        migratedFrom = format;
      } catch (e) {
        migrationError = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      }
    }
  } else {
    seed = systemEnv.random(32);
    writePrivateFile(path, encodeKeyFile(seed));
    created = true;
  }
  try {
    const signer = await WebCryptoSigner.fromSeed(seed, opts.extractable ?? false);
    return {
      signer,
      created,
      ...(migratedFrom ? { migratedFrom } : {}),
      ...(migrationError ? { migrationError } : {}),
    };
  } finally {
    seed.fill(0);
  }
}
