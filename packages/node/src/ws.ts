/**
 * The WebSocket client Hearth's Node side connects with (`ws`), with certificate pinning for a
 * server that has a self-signed certificate.
 *
 * With a pin, the server's certificate must have exactly that SHA-256 fingerprint: it is checked
 * on the TLS socket as soon as the handshake completes, before the HTTP upgrade response is read,
 * and a mismatch destroys the socket with {@link CertificatePinError} (a possible attack: someone
 * between the agent and its server). Without a pin, the usual CA validation applies; `insecure`
 * turns all checking off (development only).
 */
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { ConfigError, VerificationError } from '@hearth/protocol';
import WebSocket from 'ws';

/** Options of {@link openWebSocket}. */
export interface OpenWebSocketOptions {
  /** SHA-256 fingerprint of the server certificate (hex, any case, colons allowed). */
  pinnedCertSha256?: string;
  /** Accept any certificate (tests and development only). Ignored when a pin is given. */
  insecure?: boolean;
  /** Largest message accepted (bytes). Default 256 KiB. */
  maxPayload?: number;
  /** Opening handshake timeout (ms). Default 10 000. */
  handshakeTimeout?: number;
}

/** The server's certificate is not the pinned one. */
export class CertificatePinError extends VerificationError {}

/** Normalise a SHA-256 fingerprint to 64 lower-case hex digits; a clear error when it is not one. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new ConfigError(
      'E_CONFIG',
      `the pinned certificate fingerprint must be a SHA-256 (64 hex digits, colons allowed), got ${JSON.stringify(fp.slice(0, 100))}`,
    );
  return hex;
}

/** Open a WebSocket to `url` (`ws://` or `wss://`), pinning the certificate when asked to. */
export function openWebSocket(url: string, o: OpenWebSocketOptions = {}): WebSocket {
  const want = o.pinnedCertSha256 !== undefined ? normalizeFingerprint(o.pinnedCertSha256) : undefined;
  const common = { maxPayload: o.maxPayload ?? 256 * 1024, handshakeTimeout: o.handshakeTimeout ?? 10_000 };
  if (want === undefined) return new WebSocket(url, { ...common, rejectUnauthorized: !o.insecure });
  if (!url.startsWith('wss:'))
    throw new ConfigError('E_CONFIG', `a pinned certificate needs a wss:// (TLS) server URL, got ${url}`);
  return new WebSocket(url, {
    ...common,
    // The pin replaces CA validation (the certificate is self-signed), and is checked below.
    rejectUnauthorized: false,
    createConnection: (opts: tls.ConnectionOptions & { host?: string }) => {
      const servername = opts.servername ?? (opts.host && !isIP(opts.host) ? opts.host : undefined);
      const sock = tls.connect({ ...opts, ...(servername ? { servername } : {}) });
      sock.once('secureConnect', () => {
        const got = (sock.getPeerCertificate()?.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
        if (got !== want)
          sock.destroy(
            new CertificatePinError(
              'E_WRONG_SIGNER',
              `the server's TLS certificate is not the pinned one (possible attack): pinned ${want}, got ${got || 'none'}`,
            ),
          );
      });
      return sock;
    },
  } as WebSocket.ClientOptions);
}
