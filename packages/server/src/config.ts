/**
 * Server configuration: YAML file < environment (`HEARTH_*`) < flags, validated with zod.
 * Every failure is a ConfigError (`E_CONFIG`) whose message names the offending key.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { ConfigError, MAX_FRAME_BYTES } from '@hearth/protocol';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { AcmeOptions } from './acme.js';

const port = z.coerce.number().int().min(0).max(65535);
const bool = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  return v;
}, z.boolean());
const posInt = z.coerce.number().int().positive();

const relaySchema = z
  .object({
    /** Run the built-in STUN/TURN relay. */
    enabled: bool.default(true),
    /** Client listening address; defaults to the server's `host`. */
    host: z.string().min(1).optional(),
    udpPort: port.default(3478),
    tcpPort: port.default(3478),
    /** TURN over TLS; served (and offered as `turns:`) only with the operator's certificate (tls files). */
    tlsPort: port.default(5349),
    /** Address clients are told to use (and put in XOR-RELAYED-ADDRESS); needed when host is a wildcard. */
    externalAddress: z.string().min(1).optional(),
    realm: z.string().min(1).max(128).default('hearth'),
    /** Permit relaying to 127/8 and ::1 (tests, single-machine demos). */
    allowLoopbackPeers: bool.default(false),
  })
  .strict();

const externalTurnSchema = z
  .object({
    urls: z
      .array(z.string().regex(/^(stun|turn|turns):/, 'must start with stun:, turn: or turns:'))
      .min(1)
      .max(8),
    /** coturn `static-auth-secret` (use-auth-secret). Or `secretFile`. */
    secret: z.string().min(16, 'must be at least 16 characters').optional(),
    secretFile: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => Boolean(t.secret) !== Boolean(t.secretFile), 'give exactly one of secret or secretFile');

const limitsSchema = z
  .object({
    maxFrameBytes: posInt.max(MAX_FRAME_BYTES).default(MAX_FRAME_BYTES),
    messagesPerSecond: posInt.default(50),
    messageBurst: posInt.default(200),
    /**
     * Messages routed to one device from one sender, per sender key and per sender address (token
     * bucket). Excess is refused to the sender with `E_RATE_LIMITED`; nothing reaches the device.
     */
    inboundPerSenderPerSecond: posInt.default(10),
    inboundPerSenderBurst: posInt.default(40),
    /** Messages routed to one device from all senders not on its `allow` list together. */
    strangersPerSecond: posInt.default(20),
    strangersBurst: posInt.default(60),
    /**
     * `pair/lookup` per source address and per tag, per minute and burst (review R7): one honest
     * pairing needs one lookup; a sweep of the 2^20 tags from one address takes months.
     */
    lookupsPerMinute: posInt.default(10),
    lookupBurst: posInt.default(10),
    lookupsPerTagPerMinute: posInt.default(30),
    /**
     * A device's `relay` requests (review R6): per minute and burst. Each mints TURN credentials
     * for the device and one viewer that messaged it within `relaySessionMs`.
     */
    relayPerMinute: posInt.default(30),
    relayBurst: posInt.default(10),
    relaySessionMs: posInt.default(120_000),
    /** Least time between two live impostor alerts to one device; the count adds up meanwhile (R14). */
    alertIntervalMs: posInt.default(60_000),
    /** Idle authenticated connection: pinged after this long without a frame, closed if silent as long again. */
    idleTimeoutMs: posInt.default(60_000),
    maxConnectionsPerAddress: posInt.default(32),
    maxConnections: posInt.default(10_000),
    authTimeoutMs: posInt.default(10_000),
    /** Malformed frames tolerated per connection before it is closed. */
    maxBadFrames: posInt.default(10),
    /** Watched devices per viewer connection. */
    maxWatch: posInt.default(1024),
  })
  .strict();

const blobsSchema = z
  .object({
    /** Serve the blob store (`/v1/blobs/…`). */
    enabled: bool.default(true),
    /** Largest sealed blob accepted (bytes). */
    maxBlobBytes: posInt.default(64 * 1024 * 1024),
    /** Per device: most bytes stored. */
    quotaBytes: posInt.default(1024 * 1024 * 1024),
    /** Per device: most blobs stored. */
    quotaCount: posInt.default(100_000),
    /**
     * Longest a whole blob upload may take (ms): the server's request timeout when the store is
     * on (30 s otherwise). An upload that stalls for 30 s is cut whatever this says.
     */
    uploadTimeoutMs: posInt.default(600_000),
    /** Accepted clock difference of a request token, either way (ms). */
    maxSkewMs: posInt.max(3_600_000).default(5 * 60_000),
    /** Most request nonces remembered (the replay cache; oldest evicted first). */
    replayCacheEntries: posInt.default(100_000),
    /** Signed requests per signer key: per second and burst. */
    requestsPerSecond: posInt.default(20),
    requestBurst: posInt.default(100),
    /** Requests per source address (before any signature is checked): per second and burst. */
    requestsPerAddressPerSecond: posInt.default(50),
    requestsPerAddressBurst: posInt.default(200),
  })
  .strict();

/** Web Push (docs/protocol.md "Notifications"): the server POSTs devices' notifications with VAPID. */
const pushSchema = z
  .object({
    /** Forward devices' `push` frames at all. */
    enabled: bool.default(true),
    /**
     * VAPID `sub` (RFC 8292): a `mailto:` or `https:` contact the push services may use. Default:
     * `publicUrl`, else `mailto:admin@localhost`.
     */
    subject: z
      .string()
      .max(256)
      .regex(/^(mailto:|https:)/, 'must start with mailto: or https:')
      .optional(),
    /** Notifications one device may send, per minute, and burst. */
    perMinute: posInt.default(30),
    burst: posInt.default(20),
    /** How long the push service may take to answer one POST. */
    timeoutMs: posInt.default(10_000),
    /**
     * Tests only: allow `http:` endpoints on loopback (127/8, ::1) and loopback addresses. Never in
     * production: with it, a device could make the server POST to its own local services.
     */
    allowInsecureLoopback: bool.default(false),
  })
  .strict();

const schema = z
  .object({
    dataDir: z.string().min(1),
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(8443),
    /** External URL (e.g. behind a reverse proxy); used for `url` and the TURN host. */
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    tls: z
      .object({
        /**
         * auto: files when cert+key are given, ACME when acme.hostname is given, plain HTTP on
         * loopback; anything else must choose (self-signed is never a default).
         */
        mode: z.enum(['auto', 'off', 'self-signed', 'files', 'acme']).default('auto'),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
        acme: z
          .object({
            /** The public DNS name the certificate is for (the CA connects to it on port 80). */
            hostname: z
              .string()
              .min(1)
              .max(253)
              .regex(/^[a-z0-9.-]+$/i)
              .optional(),
            directoryUrl: z
              .url({ protocol: /^https$/ })
              .default('https://acme-v02.api.letsencrypt.org/directory'),
            email: z.email().optional(),
            httpPort: port.default(80),
            httpHost: z.string().min(1).optional(),
            renewBeforeSeconds: posInt.default(30 * 86_400),
            checkIntervalSeconds: posInt.default(12 * 3600),
            caFile: z.string().min(1).optional(),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    relay: relaySchema.prefault({}),
    /** TTL of issued TURN credentials (seconds). */
    turnTtlSeconds: posInt.max(86_400).default(600),
    turnServers: z.array(externalTurnSchema).max(4).default([]),
    limits: limitsSchema.prefault({}),
    /** The blob store (docs/protocol.md "Blob store"). */
    blobs: blobsSchema.prefault({}),
    push: pushSchema.prefault({}),
    /** Serve the viewer web app at `/`. */
    serveViewer: bool.default(true),
    /** Directory of the built viewer (default: @hearth/viewer's dist/). */
    webRoot: z.string().min(1).optional(),
  })
  .strict();

/** TLS after resolution. */
export type TlsConfig =
  | { mode: 'off' }
  | { mode: 'self-signed' }
  | { mode: 'files'; cert: string; key: string }
  | { mode: 'acme'; acme: AcmeOptions };

type Parsed = z.infer<typeof schema>;
/** The fully resolved, validated server configuration. */
export interface ServerConfig extends Omit<Parsed, 'tls' | 'turnServers'> {
  tls: TlsConfig;
  turnServers: { urls: string[]; secret: string }[];
}

/**
 * Input accepted by startServer: a resolved ServerConfig, or any subset of it (nested sections may
 * be partial too), plus dataDir. Defaults are filled in and everything is validated again.
 */
export type ServerConfigInput = Omit<Partial<ServerConfig>, 'relay' | 'limits' | 'tls' | 'blobs' | 'push'> & {
  dataDir: string;
  blobs?: Partial<ServerConfig['blobs']>;
  push?: Partial<ServerConfig['push']>;
  relay?: Partial<ServerConfig['relay']> | boolean;
  limits?: Partial<ServerConfig['limits']>;
  tls?:
    | { mode?: 'auto' | TlsConfig['mode']; cert?: string; key?: string; acme?: Partial<AcmeOptions> }
    | 'auto'
    | TlsConfig['mode'];
};

/** Environment variables and the config key each one sets. */
export const ENV_KEYS: Record<string, string> = {
  HEARTH_CONFIG: '(path of the YAML config file)',
  HEARTH_DATA_DIR: 'dataDir',
  HEARTH_HOST: 'host',
  HEARTH_PORT: 'port',
  HEARTH_PUBLIC_URL: 'publicUrl',
  HEARTH_TLS: 'tls.mode',
  HEARTH_TLS_CERT: 'tls.cert',
  HEARTH_TLS_KEY: 'tls.key',
  HEARTH_ACME_HOSTNAME: 'tls.acme.hostname',
  HEARTH_ACME_DIRECTORY: 'tls.acme.directoryUrl',
  HEARTH_ACME_EMAIL: 'tls.acme.email',
  HEARTH_ACME_HTTP_PORT: 'tls.acme.httpPort',
  HEARTH_RELAY: 'relay.enabled',
  HEARTH_RELAY_HOST: 'relay.host',
  HEARTH_RELAY_UDP_PORT: 'relay.udpPort',
  HEARTH_RELAY_TCP_PORT: 'relay.tcpPort',
  HEARTH_RELAY_TLS_PORT: 'relay.tlsPort',
  HEARTH_RELAY_EXTERNAL_ADDRESS: 'relay.externalAddress',
  HEARTH_RELAY_REALM: 'relay.realm',
  HEARTH_RELAY_ALLOW_LOOPBACK_PEERS: 'relay.allowLoopbackPeers',
  HEARTH_TURN_TTL: 'turnTtlSeconds',
  HEARTH_TURN_URLS: 'turnServers[0].urls (comma separated)',
  HEARTH_TURN_SECRET: 'turnServers[0].secret',
  HEARTH_TURN_SECRET_FILE: 'turnServers[0].secretFile',
  HEARTH_SERVE_VIEWER: 'serveViewer',
  HEARTH_WEB_ROOT: 'webRoot',
  HEARTH_MAX_CONNECTIONS_PER_ADDRESS: 'limits.maxConnectionsPerAddress',
  HEARTH_MESSAGES_PER_SECOND: 'limits.messagesPerSecond',
  HEARTH_LOOKUPS_PER_MINUTE: 'limits.lookupsPerMinute',
  HEARTH_LOOKUP_BURST: 'limits.lookupBurst',
  HEARTH_AUTH_TIMEOUT_MS: 'limits.authTimeoutMs',
  HEARTH_BLOBS: 'blobs.enabled',
  HEARTH_BLOB_MAX_BYTES: 'blobs.maxBlobBytes',
  HEARTH_BLOB_QUOTA_BYTES: 'blobs.quotaBytes',
  HEARTH_BLOB_QUOTA_COUNT: 'blobs.quotaCount',
  HEARTH_PUSH: 'push.enabled',
  HEARTH_PUSH_SUBJECT: 'push.subject',
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function setPath(o: Obj, path: string, v: unknown): void {
  const parts = path.split('.');
  let cur = o;
  for (const p of parts.slice(0, -1)) {
    if (!isObj(cur[p])) cur[p] = {};
    cur = cur[p] as Obj;
  }
  cur[parts.at(-1)!] = v;
}

function merge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Obj, v) : v;
  }
  return out;
}

/** Accept the flat aliases the CLI uses (`tlsCert`, `tlsKey`, `relay: false`). */
function normalize(o: Obj): Obj {
  const out: Obj = { ...o };
  if ('tlsCert' in out) {
    setPath(out, 'tls.cert', out.tlsCert);
    delete out.tlsCert;
  }
  if ('tlsKey' in out) {
    setPath(out, 'tls.key', out.tlsKey);
    delete out.tlsKey;
  }
  if (typeof out.relay === 'boolean' || typeof out.relay === 'string') out.relay = { enabled: out.relay };
  if (typeof out.tls === 'string') out.tls = { mode: out.tls };
  return out;
}

function fromEnv(env: NodeJS.ProcessEnv): Obj {
  const out: Obj = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v === undefined || v === '' || key.startsWith('(') || key.startsWith('turnServers')) continue;
    setPath(out, key, v);
  }
  if (env.HEARTH_TURN_URLS) {
    out.turnServers = [
      {
        urls: env.HEARTH_TURN_URLS.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        ...(env.HEARTH_TURN_SECRET ? { secret: env.HEARTH_TURN_SECRET } : {}),
        ...(env.HEARTH_TURN_SECRET_FILE ? { secretFile: env.HEARTH_TURN_SECRET_FILE } : {}),
      },
    ];
  }
  return out;
}

function readYaml(file: string): Obj {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(
      'E_CONFIG',
      `cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(
      'E_CONFIG',
      `config file ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  if (doc === null || doc === undefined) return {};
  if (!isObj(doc)) throw new ConfigError('E_CONFIG', `config file ${file} must be a mapping of keys`);
  return doc;
}

/** True for 127/8, ::1 and `localhost`. */
export function isLoopbackHost(h: string): boolean {
  const host = h.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** True for 0.0.0.0 / :: (listen on every interface). */
export function isWildcardHost(h: string): boolean {
  return h === '0.0.0.0' || h === '::' || h === '[::]';
}

function describe(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => {
      const key = i.path.length ? i.path.map(String).join('.') : '(root)';
      if (i.code === 'unrecognized_keys')
        return `unknown key(s) ${i.keys.map((k) => (i.path.length ? `${key}.${k}` : k)).join(', ')}`;
      return `${key}: ${/received undefined$/.test(i.message) ? 'is required' : i.message}`;
    })
    .join('; ');
}

/** Validate and resolve a merged raw configuration object. */
export function resolveServerConfig(raw: unknown): ServerConfig {
  const r = schema.safeParse(isObj(raw) ? normalize(raw) : raw);
  if (!r.success) throw new ConfigError('E_CONFIG', `invalid server configuration: ${describe(r.error)}`);
  const c = r.data;
  const { cert, key } = c.tls;
  let tls: TlsConfig;
  let mode = c.tls.mode;
  if ((cert || key) && !(cert && key))
    throw new ConfigError('E_CONFIG', 'tls.cert and tls.key must be given together');
  const a = c.tls.acme;
  if (mode === 'auto') {
    if (cert) mode = 'files';
    else if (a.hostname) mode = 'acme';
    else if (isLoopbackHost(c.host)) mode = 'off';
    else
      throw new ConfigError(
        'E_CONFIG',
        `host ${JSON.stringify(c.host)} is not loopback and no certificate is configured: set tls.acme.hostname (HEARTH_ACME_HOSTNAME) to your public DNS name for an automatic certificate, give tls.cert/tls.key, or choose tls.mode "self-signed" explicitly (agents then need --pin-cert with the printed certSha256)`,
      );
  }
  if (mode === 'files') {
    if (!cert || !key) throw new ConfigError('E_CONFIG', 'tls.mode "files" needs tls.cert and tls.key');
    tls = { mode, cert: resolve(cert), key: resolve(key) };
  } else if (mode === 'off') {
    if (!isLoopbackHost(c.host)) {
      throw new ConfigError(
        'E_CONFIG',
        `tls.mode "off" (plain HTTP) is only allowed when host is a loopback address; host is ${JSON.stringify(c.host)}. Give tls.cert/tls.key or use tls.mode "self-signed"`,
      );
    }
    tls = { mode };
  } else if (mode === 'acme') {
    if (!a.hostname) throw new ConfigError('E_CONFIG', 'tls.mode "acme" needs tls.acme.hostname');
    tls = {
      mode,
      acme: {
        hostname: a.hostname.toLowerCase(),
        directoryUrl: a.directoryUrl,
        ...(a.email ? { email: a.email } : {}),
        httpPort: a.httpPort,
        httpHost: a.httpHost ?? c.host,
        renewBeforeSeconds: a.renewBeforeSeconds,
        checkIntervalSeconds: a.checkIntervalSeconds,
        ...(a.caFile ? { caFile: resolve(a.caFile) } : {}),
      },
    };
  } else tls = { mode };
  const relayHost = c.relay.host ?? c.host;
  if (c.relay.enabled && isWildcardHost(relayHost) && !c.relay.externalAddress) {
    throw new ConfigError(
      'E_CONFIG',
      `relay.externalAddress is required when the relay listens on ${relayHost}`,
    );
  }
  const turnServers = c.turnServers.map((t, i) => {
    if (t.secret) return { urls: t.urls, secret: t.secret };
    try {
      const secret = readFileSync(t.secretFile!, 'utf8').trim();
      if (secret.length < 16) throw new Error('shorter than 16 characters');
      return { urls: t.urls, secret };
    } catch (e) {
      throw new ConfigError(
        'E_CONFIG',
        `turnServers.${i}.secretFile: cannot use ${t.secretFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  });
  return { ...c, dataDir: resolve(c.dataDir), tls, turnServers };
}

/**
 * Load the configuration: YAML `file` (or `$HEARTH_CONFIG`) < environment (`HEARTH_*`) < `flags`.
 * Throws ConfigError (`E_CONFIG`) naming the bad key.
 */
export function loadServerConfig(
  o: { file?: string; env?: NodeJS.ProcessEnv; flags?: Record<string, unknown> } = {},
): ServerConfig {
  const env = o.env ?? {};
  const file = o.file ?? env.HEARTH_CONFIG;
  let raw: Obj = file ? normalize(readYaml(file)) : {};
  raw = merge(raw, normalize(fromEnv(env)));
  raw = merge(raw, normalize(o.flags ?? {}));
  return resolveServerConfig(raw);
}
