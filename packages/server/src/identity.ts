/**
 * Per-install secrets kept in the data directory, each created on first start with mode 0600:
 * the server's Ed25519 key (`server.key`), the built-in relay's TURN REST secret (`turn.secret`)
 * and, when asked for, a self-signed TLS certificate (`tls-cert.pem`, `tls-key.pem`).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import {
  b64u,
  ConfigError,
  encodeId,
  fromB64u,
  type ServerKeyText,
  type Signer,
  WebCryptoSigner,
} from '@hearth/protocol';

/** Write a secret file atomically with mode 0600 (never readable by others, even briefly). */
function writeSecret(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
}

/** Make sure `dir` exists and is private. */
export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ConfigError(
      'E_CONFIG',
      `dataDir ${dir} cannot be created: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/** The server's identity key (hsk_): loaded from dataDir, or created there on first start. */
export async function loadServerKey(dataDir: string): Promise<{ signer: Signer; id: ServerKeyText }> {
  const path = join(dataDir, 'server.key');
  let seed: Uint8Array;
  if (existsSync(path)) {
    try {
      seed = fromB64u(readFileSync(path, 'utf8').trim(), 32);
      if (seed.length !== 32) throw new Error('wrong length');
    } catch {
      throw new ConfigError(
        'E_CONFIG',
        `${path} is not a Hearth server key (delete it to create a new identity)`,
      );
    }
    chmodSync(path, 0o600);
  } else {
    seed = new Uint8Array(randomBytes(32));
    writeSecret(path, `${b64u(seed)}\n`);
  }
  const signer = await WebCryptoSigner.fromSeed(seed, false);
  seed.fill(0);
  return { signer, id: encodeId('serverKey', signer.publicKey) };
}

/** The built-in relay's TURN REST secret (random per install). */
export function loadTurnSecret(dataDir: string): string {
  const path = join(dataDir, 'turn.secret');
  if (existsSync(path)) {
    const s = readFileSync(path, 'utf8').trim();
    if (s.length >= 32) return s;
    throw new ConfigError(
      'E_CONFIG',
      `${path} is too short to be a TURN secret (delete it to create a new one)`,
    );
  }
  const s = randomBytes(32).toString('base64url');
  writeSecret(path, `${s}\n`);
  return s;
}

/** SHA-256 fingerprint of a PEM certificate, as colon-separated upper-case hex. */
export function certFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/**
 * A self-signed certificate (ECDSA P-256, 10 years) in dataDir, created with the `openssl` CLI on
 * first start. Its SAN covers localhost, 127.0.0.1, ::1 and `host` when that is a name or address.
 */
export function loadSelfSigned(dataDir: string, host: string): { cert: string; key: string } {
  const certPath = join(dataDir, 'tls-cert.pem');
  const keyPath = join(dataDir, 'tls-key.pem');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    const san = new Set(['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
    const h = host.replace(/^\[|\]$/g, '');
    if (h && h !== '0.0.0.0' && h !== '::') san.add(isIP(h) ? `IP:${h}` : `DNS:${h}`);
    const tmpKey = `${keyPath}.${process.pid}.tmp`;
    const tmpCert = `${certPath}.${process.pid}.tmp`;
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '3650',
          '-subj',
          '/CN=hearth',
          '-addext',
          `subjectAltName=${[...san].join(',')}`,
          '-keyout',
          tmpKey,
          '-out',
          tmpCert,
        ],
        { stdio: 'ignore', timeout: 30_000 },
      );
      chmodSync(tmpKey, 0o600);
      renameSync(tmpKey, keyPath);
      renameSync(tmpCert, certPath);
    } catch (e) {
      rmSync(tmpKey, { force: true });
      rmSync(tmpCert, { force: true });
      throw new ConfigError(
        'E_CONFIG',
        `cannot create a self-signed certificate with openssl (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give tls.cert and tls.key instead`,
      );
    }
  }
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}
