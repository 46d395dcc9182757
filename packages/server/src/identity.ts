/**
 * Per-install secrets kept in the data directory, each created on first start with mode 0600:
 * the server's Ed25519 key (`server.key`), the built-in relay's TURN REST secret (`turn.secret`)
 * and, when asked for, a self-signed TLS certificate (`tls-cert.pem`, `tls-key.pem`).
 *
 * They are private files of @hearth/node, with the agent's rules: written atomically and fsynced
 * (file, then directory), refused (never chmod-ed) when others may read them; `server.key` is in
 * the one key file format (PKCS#8 PEM; the older base64url seed still loads and is rewritten).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import {
  ensurePrivateDir,
  type KeyFileFormat,
  loadOrCreateKey,
  readPrivateFile,
  writePrivateFile,
} from '@hearth/node';
import { ConfigError, encodeId, type ServerKeyText, type Signer } from '@hearth/protocol';

/** Make sure `dir` exists and is private. */
export function ensureDataDir(dir: string): void {
  ensurePrivateDir(dir);
}

/** The server's identity key (hsk_): loaded from dataDir, or created there on first start. */
export async function loadServerKey(
  dataDir: string,
): Promise<{ signer: Signer; id: ServerKeyText; migratedFrom?: KeyFileFormat; migrationError?: string }> {
  const k = await loadOrCreateKey(join(dataDir, 'server.key'));
  return {
    signer: k.signer,
    id: encodeId('serverKey', k.signer.publicKey),
    ...(k.migratedFrom ? { migratedFrom: k.migratedFrom } : {}),
    ...(k.migrationError ? { migrationError: k.migrationError } : {}),
  };
}

/** The built-in relay's TURN REST secret (random per install). */
export function loadTurnSecret(dataDir: string): string {
  const path = join(dataDir, 'turn.secret');
  const existing = readPrivateFile(path, 4096);
  if (existing) {
    const s = existing.toString('utf8').trim();
    existing.fill(0);
    if (s.length >= 32) return s;
    throw new ConfigError(
      'E_CONFIG',
      `${path} is too short to be a TURN secret (delete it to create a new one)`,
    );
  }
  const s = randomBytes(32).toString('base64url');
  writePrivateFile(path, `${s}\n`);
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
    // openssl writes both into a private temporary directory; they are then moved in with the
    // private-file rules (the key last: its presence means the pair is complete).
    const tmpDir = join(dataDir, `.tls-${process.pid}.tmp`);
    const tmpKey = join(tmpDir, 'key.pem');
    const tmpCert = join(tmpDir, 'cert.pem');
    try {
      rmSync(tmpDir, { recursive: true, force: true });
      ensurePrivateDir(tmpDir);
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
      writePrivateFile(certPath, readFileSync(tmpCert));
      writePrivateFile(keyPath, readFileSync(tmpKey));
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(
        'E_CONFIG',
        `cannot create a self-signed certificate with openssl (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give tls.cert and tls.key instead`,
      );
    } finally {
      rmSync(tmpDir, { recursive: true, force: true });
    }
  }
  const key = readPrivateFile(keyPath);
  if (!key)
    throw new ConfigError('E_CONFIG', `${keyPath} is missing (delete ${certPath} to create a new pair)`);
  return { cert: readFileSync(certPath, 'utf8'), key: key.toString('utf8') };
}
