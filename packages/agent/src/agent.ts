/**
 * The agent: one device identity, its ACL, its cameras, and its connection to the rendezvous.
 *
 * ```
 * rendezvous ──recv(from, m)──▶ Agent ──pair/*──────────▶ PairingHost (SPAKE2+, window, limits)
 *                                 │   ──session/*───────▶ SessionManager (verify, ACL, answer)
 *                                 │   ──acl/*───────────▶ ACL (owner-signed updates)
 *                                 └── cameras ──────────▶ MediaBackend (ffmpeg + werift)
 * ```
 */
import { type Acl, type CryptoEnv, decodeEnvelope, HearthError, shortId, systemEnv } from '@hearth/protocol';
import { loadAcl, saveAcl } from './device/acl-store.js';
import { loadOrCreateIdentity } from './device/identity.js';
import { PairingHost, type PairingInfo } from './device/pairing-host.js';
import { RendezvousClient } from './device/rendezvous-client.js';
import { type MediaBackend, type SessionEvent, SessionManager } from './device/sessions.js';

/** Minimal structured logger (pino-compatible). */
export interface Logger {
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
  error(o: object, msg?: string): void;
}

/** Options of {@link startAgent}. */
export interface AgentOptions {
  /** Where the device key, ACL and state live (created with mode 0700). */
  dataDir: string;
  /** Rendezvous server base URL (`https://…` or `http://127.0.0.1:…`). */
  serverUrl: string;
  /** Media layer (cameras). */
  media: MediaBackend;
  /** Pin the server's self-signed certificate (SHA-256 hex). */
  pinnedCertSha256?: string;
  /** Accept any server certificate (development only). */
  insecure?: boolean;
  log?: Logger;
  env?: CryptoEnv;
  /** Pairing window length (ms). Default 10 minutes. */
  pairingWindowMs?: number;
  /** Called whenever a new pairing window opens, with the QR URL and manual code to show. */
  onPairingWindow?: (info: PairingInfo) => void;
  /** Called for every session event (also logged). */
  onEvent?: (e: SessionEvent | { kind: string; [k: string]: unknown }) => void;
}

/** A running agent. */
export interface Agent {
  readonly deviceId: string;
  /** Current pairing window, if open. */
  pairing(): PairingInfo | undefined;
  /** The ACL, once paired. */
  acl(): Acl | undefined;
  readonly sessions: SessionManager;
  readonly client: RendezvousClient;
  /** Re-open the pairing window (the "physical action": run on the device itself). */
  openPairing(): Promise<PairingInfo>;
  close(): Promise<void>;
}

const quiet: Logger = { info() {}, warn() {}, error() {} };

/** Start an agent. */
export async function startAgent(o: AgentOptions): Promise<Agent> {
  const log = o.log ?? quiet;
  const env = o.env ?? systemEnv;
  const id = await loadOrCreateIdentity(o.dataDir);
  if (id.created) log.info({ device: id.deviceId }, 'created a new device identity');
  let acl = await loadAcl(o.dataDir, env.now());
  const wsUrl = `${o.serverUrl.replace(/^http/, 'ws').replace(/\/$/, '')}/ws`;
  const client = new RendezvousClient({
    url: wsUrl,
    signer: id.signer,
    role: 'device',
    ...(o.pinnedCertSha256 ? { pinnedCertSha256: o.pinnedCertSha256 } : {}),
    ...(o.insecure ? { insecure: true } : {}),
    log: (level, msg, extra) => log[level]({ ...extra }, msg),
  });
  const emit = (e: SessionEvent | { kind: string; [k: string]: unknown }) => {
    o.onEvent?.(e);
    const { kind, ...rest } = e as { kind: string };
    const fields = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, typeof v === 'string' && v.startsWith('huk_') ? shortId(v) : v]));
    log.info(fields, kind);
  };
  const sessions = new SessionManager({
    deviceId: id.deviceId,
    signer: id.signer,
    env,
    media: o.media,
    acl: () => acl,
    send: (to, m) => client.sendTo(to, m),
    iceServers: () => client.ice,
    onEvent: (e) => {
      emit(e);
      if (e.kind === 'session-refused' && e.attack) log.warn({ viewer: shortId(e.viewer), code: e.code }, 'refused an offer that failed verification: possible attack');
    },
  });
  const pairing = new PairingHost({
    deviceId: id.deviceId,
    signer: id.signer,
    env,
    serverUrl: o.serverUrl,
    windowMs: o.pairingWindowMs ?? 10 * 60_000,
    send: (to, m) => client.sendTo(to, m),
    register: (tag) => client.send({ t: 'pair/register', tag }),
    isPaired: () => acl !== undefined,
    onPaired: (viewerKey, role) => {
      if (role === 'owner' && !acl) {
        acl = (awaitableAcl(id.deviceId, viewerKey));
        saveAcl(o.dataDir, acl);
      }
      emit({ kind: 'paired', viewer: viewerKey, role });
    },
    onEvent: emit,
  });

  client.on('ready', (f: { impostors?: number }) => {
    log.info({ device: id.deviceId }, 'connected to the rendezvous server');
    if (f.impostors) {
      log.warn({ count: f.impostors }, 'someone tried to connect as this device without its key: possible attack');
      emit({ kind: 'impostor-alert', count: f.impostors });
    }
    pairing.reregister();
  });
  client.on('alert', (f: { code: string; count: number }) => {
    log.warn({ code: f.code, count: f.count }, 'alert from the server: possible attack');
    emit({ kind: 'impostor-alert', count: f.count });
  });
  client.on('recv', (from: string, m: unknown) => {
    void onMessage(from, m).catch((e) => log.error({ code: (e as HearthError).code, err: (e as Error).message }, 'failed to handle a message'));
  });

  async function onMessage(from: string, m: unknown): Promise<void> {
    if (typeof m !== 'object' || m === null || typeof (m as { t?: unknown }).t !== 'string') return;
    const msg = m as { t: string; [k: string]: unknown };
    if (msg.t.startsWith('pair/')) return pairing.onMessage(from, msg);
    switch (msg.t) {
      case 'session/offer':
        return sessions.onOffer(from, msg);
      case 'session/ice':
        return sessions.onIce(from, msg);
      case 'session/close':
        return sessions.onClose(from, msg);
      case 'cameras': {
        const ok = acl?.authorize(from, 'live', env.now());
        if (!ok?.allowed) return void client.sendTo(from, { t: 'cameras/refused', code: ok && !ok.allowed ? ok.error.code : 'E_NO_GRANT' });
        return void client.sendTo(from, { t: 'cameras', list: o.media.cameras(), role: ok.role });
      }
      case 'acl/update': {
        if (!acl) return void client.sendTo(from, { t: 'acl/error', code: 'E_NO_GRANT' });
        try {
          const next = await acl.apply(decodeEnvelope(msg.env), env.now());
          const dropped = acl.dropped(next, env.now());
          acl = next;
          saveAcl(o.dataDir, acl);
          const closed = sessions.sweep();
          emit({ kind: 'acl-updated', ver: acl.state.ver, dropped: dropped.length, closed });
          client.sendTo(from, { t: 'acl/ok', ver: acl.state.ver });
        } catch (e) {
          client.sendTo(from, { t: 'acl/error', code: e instanceof HearthError ? e.code : 'E_INTERNAL' });
        }
        return;
      }
      case 'acl/get': {
        if (!acl || !acl.authorize(from, 'live', env.now()).allowed || from !== acl.state.owner) {
          return void client.sendTo(from, { t: 'acl/error', code: 'E_NO_GRANT' });
        }
        return void client.sendTo(from, { t: 'acl', state: acl.toJSON() });
      }
      default:
        return;
    }
  }

  if (!acl) await pairing.open();
  client.start();

  return {
    deviceId: id.deviceId,
    pairing: () => pairing.info(),
    acl: () => acl,
    sessions,
    client,
    openPairing: () => pairing.open(),
    async close() {
      sessions.dispose();
      pairing.close();
      client.close();
    },
  };
}
