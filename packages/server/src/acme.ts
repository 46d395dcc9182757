/**
 * Automatic HTTPS (as Caddy does it): the certificate for `hostname` is obtained and renewed over
 * ACME (RFC 8555) with an HTTP-01 challenge answered by the server's own plain-HTTP listener.
 * The account key, certificate and private key live in `<dataDir>/acme/` as 0600 files.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttp, type Server } from 'node:http';
import { Agent } from 'node:https';
import { join } from 'node:path';
import type { Logger } from '@hearth/node';
import { ensurePrivateDir, readPrivateFile, writePrivateFile } from '@hearth/node';
import { ConfigError } from '@hearth/protocol';
import * as acme from 'acme-client';

export interface AcmeOptions {
  hostname: string;
  directoryUrl: string;
  email?: string;
  /** Port of the HTTP-01 listener (80 in production: the CA connects to hostname:80). */
  httpPort: number;
  /** Address the HTTP-01 listener binds. */
  httpHost: string;
  /** Renew when the certificate has less than this left. */
  renewBeforeSeconds: number;
  /** How often the renewal timer looks at the certificate. */
  checkIntervalSeconds: number;
  /** PEM CA bundle to trust for the ACME directory (a test CA such as pebble). */
  caFile?: string;
}

export interface AcmeCert {
  cert: string;
  key: string;
  notAfter: Date;
}

export interface AcmeManager {
  /** The current certificate: loaded from the data directory, or obtained now. */
  current(): AcmeCert;
  /** Obtain a new certificate now (the renewal timer calls this). */
  renew(): Promise<AcmeCert>;
  /** Start the renewal timer; `onRenewed` installs the new certificate. */
  startTimer(onRenewed: (c: AcmeCert) => void): void;
  close(): Promise<void>;
}

/** Test-only switch for the control: the challenge listener answers with a wrong key authorization. */
export const acmeTestHooks = { breakChallenge: false };

export async function startAcme(dataDir: string, o: AcmeOptions, log: Logger): Promise<AcmeManager> {
  const dir = join(dataDir, 'acme');
  ensurePrivateDir(dir);
  const accountPath = join(dir, 'account-key.pem');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  let accountKey = readPrivateFile(accountPath);
  if (!accountKey) {
    accountKey = await acme.crypto.createPrivateEcdsaKey('P-256');
    writePrivateFile(accountPath, accountKey);
    log.info({ path: accountPath }, 'acme: created account key');
  }
  if (o.caFile) {
    let ca: Buffer;
    try {
      ca = readFileSync(o.caFile);
    } catch (e) {
      throw new ConfigError(
        'E_CONFIG',
        `tls.acme.caFile cannot be read: ${(e as NodeJS.ErrnoException).code}`,
      );
    }
    acme.axios.defaults.httpsAgent = new Agent({ ca });
  }
  const client = new acme.Client({ directoryUrl: o.directoryUrl, accountKey, backoffAttempts: 5 });

  // The HTTP-01 listener: tokens in memory, everything else redirected to HTTPS.
  const tokens = new Map<string, string>();
  const prefix = '/.well-known/acme-challenge/';
  const http: Server = createHttp((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path.startsWith(prefix)) {
      const ka = tokens.get(path.slice(prefix.length));
      if (ka === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(acmeTestHooks.breakChallenge ? `${ka}x` : ka);
      return;
    }
    res.writeHead(308, { location: `https://${o.hostname}${path}` }).end();
  });
  http.headersTimeout = 10_000;
  http.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    http.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new ConfigError(
          'E_CONFIG',
          `acme: cannot listen for HTTP-01 challenges on ${o.httpHost}:${o.httpPort}: ${e.code ?? e.message}`,
        ),
      ),
    );
    http.listen(o.httpPort, o.httpHost, () => resolve());
  });

  const load = (): AcmeCert | undefined => {
    const key = readPrivateFile(keyPath);
    if (!key) return undefined;
    try {
      const cert = readFileSync(certPath, 'utf8');
      const info = acme.crypto.readCertificateInfo(cert);
      if (!info.domains.altNames.includes(o.hostname) && info.domains.commonName !== o.hostname)
        return undefined;
      return { cert, key: key.toString('utf8'), notAfter: info.notAfter };
    } catch {
      return undefined;
    }
  };

  let renewing: Promise<AcmeCert> | undefined;
  const renew = (): Promise<AcmeCert> => {
    renewing ??= (async () => {
      log.info({ hostname: o.hostname, directoryUrl: o.directoryUrl }, 'acme: requesting a certificate');
      try {
        const [key, csr] = await acme.crypto.createCsr(
          { commonName: o.hostname, altNames: [o.hostname] },
          await acme.crypto.createPrivateEcdsaKey('P-256'),
        );
        const cert = await client.auto({
          csr,
          ...(o.email ? { email: o.email } : {}),
          termsOfServiceAgreed: true,
          challengePriority: ['http-01'],
          // The CA's own validation is the check; a self-check would need our public address.
          skipChallengeVerification: true,
          challengeCreateFn: async (_a, ch, ka) => {
            tokens.set(ch.token, ka);
            log.info({ hostname: o.hostname, token: ch.token }, 'acme: serving the HTTP-01 challenge');
          },
          challengeRemoveFn: async (_a, ch) => {
            tokens.delete(ch.token);
          },
        });
        const info = acme.crypto.readCertificateInfo(cert);
        writePrivateFile(certPath, cert);
        writePrivateFile(keyPath, key);
        const got = { cert, key: key.toString('utf8'), notAfter: info.notAfter };
        cur = got;
        log.info(
          { hostname: o.hostname, notAfter: info.notAfter.toISOString() },
          'acme: certificate obtained',
        );
        return got;
      } catch (e) {
        const msg = `acme: could not obtain a certificate for ${o.hostname} from ${o.directoryUrl}: ${(e as Error).message}`;
        log.error({ hostname: o.hostname }, msg);
        throw new ConfigError('E_CONFIG', msg);
      } finally {
        renewing = undefined;
      }
    })();
    return renewing;
  };

  const due = (c: AcmeCert): boolean => c.notAfter.getTime() - Date.now() < o.renewBeforeSeconds * 1000;
  let cur = load();
  if (cur && !due(cur))
    log.info({ notAfter: cur.notAfter.toISOString() }, 'acme: using the stored certificate');
  else {
    try {
      cur = await renew();
    } catch (e) {
      await new Promise<void>((r) => http.close(() => r()));
      throw e;
    }
  }

  let timer: NodeJS.Timeout | undefined;
  return {
    current: () => cur!,
    renew,
    startTimer(onRenewed) {
      timer = setInterval(() => {
        if (!cur || !due(cur) || renewing) return;
        log.info({ notAfter: cur.notAfter.toISOString() }, 'acme: certificate is due for renewal');
        renew().then(onRenewed, () => {
          // Logged in renew(); the timer tries again at its next tick.
        });
      }, o.checkIntervalSeconds * 1000);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      await renewing?.catch(() => {});
      await new Promise<void>((r) => {
        http.close(() => r());
        http.closeAllConnections();
      });
    },
  };
}
