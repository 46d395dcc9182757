/**
 * A `fetch` for a server whose self-signed certificate is pinned (the agent's `--pin-cert`), for
 * the HTTP requests that go beside the rendezvous WebSocket (the blob store).
 *
 * The TLS connection is made and its certificate checked against the pin **before** a byte of the
 * request is written: a signed request token handed to someone in the middle could be used once
 * against the real server. A mismatch rejects with {@link CertificatePinError} (a possible attack).
 * Only what the Hearth clients use: a method, headers and an optional byte body.
 */
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import { ConfigError } from '@hearth/protocol';
import { CertificatePinError, normalizeFingerprint } from './ws.js';

/** The part of `fetch` Hearth's HTTP clients use. */
export type MinimalFetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: Uint8Array },
) => Promise<Response>;

/** A {@link MinimalFetch} that pins the server certificate's SHA-256 (hex, colons allowed). */
export function pinnedFetch(pinnedCertSha256: string): MinimalFetch {
  const want = normalizeFingerprint(pinnedCertSha256);
  return async (url, init) => {
    const u = new URL(url);
    if (u.protocol !== 'https:')
      throw new ConfigError(
        'E_CONFIG',
        `a pinned certificate needs an https:// server URL, got ${u.protocol}`,
      );
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || 443);
    const sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({
        host,
        port,
        // The pin replaces CA validation (the certificate is self-signed), and is checked below.
        rejectUnauthorized: false,
        ...(isIP(host) ? {} : { servername: host }),
      });
      s.once('error', reject);
      s.once('secureConnect', () => {
        const got = (s.getPeerCertificate()?.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
        if (got !== want) {
          s.destroy();
          reject(
            new CertificatePinError(
              'E_WRONG_SIGNER',
              `the server's TLS certificate is not the pinned one (possible attack): pinned ${want}, got ${got || 'none'}`,
            ),
          );
          return;
        }
        s.off('error', reject);
        resolve(s);
      });
    });
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(
        {
          host,
          port,
          method: init.method,
          path: `${u.pathname}${u.search}`,
          headers: { ...init.headers, ...(init.body ? { 'content-length': String(init.body.length) } : {}) },
          // No agent: with `createConnection` and no agent, the request goes over this socket only.
          createConnection: () => sock,
        },
        (res) => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
          const status = res.statusCode ?? 0;
          const nobody = status === 204 || status === 304 || init.method === 'HEAD';
          if (nobody) res.resume();
          resolve(
            new Response(nobody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
              status,
              headers,
            }),
          );
        },
      );
      req.once('error', reject);
      req.end(
        init.body ? Buffer.from(init.body.buffer, init.body.byteOffset, init.body.byteLength) : undefined,
      );
    });
  };
}
