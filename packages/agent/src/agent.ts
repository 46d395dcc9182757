/**
 * The agent: one device identity, its ACL, its cameras, and its connection to the rendezvous.
 *
 * ```
 * rendezvous ──recv(from, m)──▶ Agent ──pair/*──────────▶ PairingHost (SPAKE2+, window, limits)
 *                                 └─ chan/* ─▶ DeviceChannels (sealed channel, @hearth/protocol)
 *                                     │   ──session/*───────▶ SessionManager (verify, ACL, answer)
 *                                     │   ──acl/*───────────▶ ACL (owner-signed updates)
 *                                     │   ──log/get─────────▶ AccessLog (<dataDir>/log/, owners read it)
 *                                     │   ──reader/key──────▶ ReaderKeyStore (readers.json)
 *                                     │   ──invite/*────────▶ InviteStore (invites.json)
 *                                     └── cameras ──────────▶ MediaBackend (ffmpeg + libdatachannel)
 * ```
 *
 * Recordings (cameras with `motion`) go from the media backend into the EventPipeline: sealed to
 * the reader keys of the users allowed `clips` on the camera, queued in `<dataDir>/outbox/`, and
 * uploaded through a BlobSink once one is given (`agent.events.setSink`).
 *
 * Every message to and from a viewer, but the pairing PAKE, goes through the sealed channel
 * (`channel.ts` in @hearth/protocol): the rendezvous server routes opaque bytes.
 */

import { type Logger, silentLogger } from '@hearth/node';
import {
  Acl,
  type AttemptPolicy,
  type CryptoEnv,
  DeviceChannels,
  type DeviceMessage,
  decodeEnvelope,
  HearthError,
  type IceServer,
  isLogCode,
  type PairingGuardSnapshot,
  type PairingMethod,
  shortId,
  systemEnv,
  type ViewerMessage,
} from '@hearth/protocol';
import { deviceTimeZone } from './config.js';
import { AccessLog, aclLogEntries, idHashOf, keyHashOf } from './device/access-log.js';
import { loadAcl, saveAcl } from './device/acl-store.js';
import { loadOrCreateIdentity } from './device/identity.js';
import { InviteStore, type InviteStoreOptions } from './device/invites.js';
import { type PairingEvent, PairingHost, type PairingInfo, pairingStatePath } from './device/pairing-host.js';
import { RendezvousClient } from './device/rendezvous-client.js';
import { fileServerKeyPin } from './device/server-key-pin.js';
import { type MediaBackend, type SessionEvent, SessionManager } from './device/sessions.js';
import { StrangerReplies, type StrangerRepliesOptions } from './device/stranger-replies.js';
import { BlobClient } from './events/blob-client.js';
import { blobClientSink } from './events/blob-sink.js';
import type { BlobSink } from './events/outbox.js';
import { EventPipeline } from './events/pipeline.js';
import { PushNotifier, type PushNotifierOptions, rendezvousPushTransport } from './events/push.js';
import { ReaderKeyStore } from './events/readers.js';

export type { PairingInfo } from './device/pairing-host.js';

/** Everything the agent reports through {@link AgentOptions.onEvent} (and its log). */
export type AgentEvent =
  | SessionEvent
  | PairingEvent
  | { kind: 'impostor-alert'; count: number }
  /** This device's clock differs from the server's by `offsetMs` (positive: ours is ahead); R13. */
  | { kind: 'clock-drift'; offsetMs: number }
  /** A sealed-channel check failed (a forged or tampered frame, a replay): possible attack. */
  | { kind: 'channel-attack'; viewer: string; code: string }
  | { kind: 'acl-created'; owner: string }
  | { kind: 'acl-updated'; ver: number; dropped: number; closed: number }
  | { kind: 'member-paired-needs-grant'; viewer: string }
  /** A viewer registered its reader key (new blobs are sealed to it), or was refused. */
  | { kind: 'reader-key'; viewer: string; ok: boolean; code?: string }
  /**
   * The server is not the one pinned at first contact (another key, or no proof of it): the agent
   * has stopped talking to it. Possible attack, or a reinstalled server (review R15).
   */
  | { kind: 'server-key-changed'; pinned: string | undefined; offered: string; reason: string }
  /** An access-log entry could not be written (the event is not in the log). */
  | { kind: 'access-log-error'; entry: string; err: string };

/** The structured logger (pino-compatible), shared with the server through @hearth/node. */
export type { Logger } from '@hearth/node';

/** Options of {@link startAgent}. */
export interface AgentOptions {
  /**
   * An owner asked to erase the household (`household/erase`, S8), and was answered. Stop this agent,
   * then `factoryReset` its data directory (server first) and start a new one. Without it the device
   * refuses such requests (`E_UNSUPPORTED`).
   */
  onErase?: () => void;
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
  /**
   * The device's IANA time zone, in which grant schedules are evaluated (config `timeZone:`).
   * Default: the system's (`Intl.DateTimeFormat().resolvedOptions().timeZone`).
   */
  timeZone?: string;
  /** Pairing window length (ms). Default 10 minutes. */
  pairingWindowMs?: number;
  /** Called whenever a new pairing window opens, with the QR URL and manual code to show. */
  onPairingWindow?: (info: PairingInfo) => void;
  /** Called for every session and pairing event (also logged). */
  onEvent?: (e: AgentEvent) => void;
  /** Pairing attempt budgets (defaults: the protocol's, 20 QR and 5 manual-code attempts). */
  pairingPolicies?: Partial<Record<PairingMethod, AttemptPolicy>>;
  /** PBKDF2 iterations for pairing records (tests only; the viewer must agree). */
  pairingIterations?: number;
  /** Reconnect backoff to the rendezvous (ms): first delay and cap. Defaults 500 / 30 000. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often live sessions are re-checked against the ACL (ms). Default 2000. */
  sweepMs?: number;
  /**
   * TEST ONLY: talk to viewers in clear instead of through the sealed channel (the control of the
   * server-dump test, and the tests of the inner signatures and DTLS checks as a breached channel
   * would leave them). Not reachable from the CLI.
   */
  unsealedForTests?: boolean;
  /**
   * Pin the server key at first contact (`server-key` in the data directory) and refuse any other
   * (default true; false only for the control of the pin's test).
   */
  pinServerKey?: boolean;
  /** Accept this server key (hsk_…) as the pinned one, e.g. after a server reinstall. */
  acceptServerKey?: string;
  /**
   * How fast the device answers keys without a grant (refusals, channel and pairing replies):
   * per stranger and in total, per second and burst. Defaults 1/10 and 10/40 (review R3).
   */
  /**
   * How long an answer waits for relay credentials when ours are not fresh (ms, default 2000);
   * the answer goes without a relay candidate after that.
   */
  relayWaitMs?: number;
  /**
   * Recordings: the outbox bound (bytes, default 1 GiB), the sink blobs go to (none: they stay in
   * the outbox until `agent.events.setSink`), the uploader's backoff.
   */
  events?: {
    outboxBytes?: number;
    sink?: BlobSink;
    /** false: keep sealed blobs in the outbox (no upload to the server's blob store). */
    upload?: boolean;
    minBackoffMs?: number;
    maxBackoffMs?: number;
  };
  strangerReplies?: Pick<
    StrangerRepliesOptions,
    'perStrangerPerSecond' | 'perStrangerBurst' | 'totalPerSecond' | 'totalBurst'
  >;
  /** Notifications (Web Push): cooldown per camera, TTL; `plaintextForTests` is a test-only control. */
  push?: Pick<PushNotifierOptions, 'cooldownMs' | 'ttl' | 'plaintextForTests'>;
  /**
   * Invites (`invites.json`): failed-redeem limits, the clock (default `env.now`), the access log
   * to append to; `unguardedForTests` is a test-only control.
   */
  invites?: Partial<Pick<InviteStoreOptions, 'limits' | 'now' | 'log' | 'unguardedForTests'>>;
}

/** A running agent. */
export interface Agent {
  readonly deviceId: string;
  /** Current pairing window, if open. */
  pairing(): PairingInfo | undefined;
  /** Pairing counters (window, attempts, locks); JSON-able. */
  pairingState(): PairingGuardSnapshot;
  /** The ACL, once paired. */
  acl(): Acl | undefined;
  readonly sessions: SessionManager;
  readonly client: RendezvousClient;
  /** The sealed channels to viewers. */
  readonly channels: DeviceChannels;
  /** The reader keys viewers registered. */
  readonly readers: ReaderKeyStore;
  /** Recordings → sealed blobs → outbox → sink (give it the real BlobClient with `setSink`). */
  readonly events: EventPipeline;
  /**
   * Notifications: the users' Web Push subscriptions (`push/sub`); call `notify` when an event
   * starts and `clipReady` when its clip is sealed (the events pipeline does).
   */
  readonly push: PushNotifier;
  /** Invites: owners create them, anyone with a link redeems one, an ACL update approves it. */
  readonly invites: InviteStore;
  /** The device's access log (`<dataDir>/log/`): pairings, ACL changes, live views, sealed clips, alerts. */
  readonly accessLog: AccessLog;
  /** Re-open the pairing window (the "physical action": run on the device itself). */
  openPairing(): Promise<PairingInfo>;
  close(): Promise<void>;
}

/** Least time between two relay requests for one viewer's `relay/ask` (ms). */
const RELAY_ASK_MS = 10_000;

/** Beyond this drift from the server's clock, the agent warns (offers allow 30 s ahead). */
const CLOCK_WARN_MS = 30_000;

/** Start an agent: identity, ACL, pairing window (while unpaired), connection to the rendezvous. */
export async function startAgent(o: AgentOptions): Promise<Agent> {
  const log = o.log ?? silentLogger;
  const env = o.env ?? systemEnv;
  const id = await loadOrCreateIdentity(o.dataDir);
  if (id.created) log.info({ device: id.deviceId }, 'created a new device identity');
  if (id.migratedFrom)
    log.info({ from: id.migratedFrom }, 'rewrote device.key in the current key file format');
  if (id.migrationError)
    log.warn({ err: id.migrationError }, 'device.key is in an older format and could not be rewritten');
  const timeZone = deviceTimeZone(o.timeZone);
  let acl = await loadAcl(o.dataDir, env.now(), { timeZone });
  const readers = await ReaderKeyStore.load(o.dataDir);
  // The access log (threat model S9); `emit` is defined below, and a failed append reports there.
  let reportLogError: (entry: string, err: string) => void = () => {};
  const accessLog = await AccessLog.open({
    dataDir: o.dataDir,
    deviceId: id.deviceId,
    signer: id.signer,
    log,
    onError: (e, entry) => reportLogError(entry?.k ?? '?', e.message),
  });
  /** Alerts (possible attacks) into the log: at most one per code a minute, so a stranger cannot fill it. */
  const alertLogged = new Map<string, number>();
  const logAlert = (alert: 'impostor' | 'possible-attack', code: string, peer?: string) => {
    if (!isLogCode(code)) return;
    const t = env.now();
    const last = alertLogged.get(code);
    if (last !== undefined && t - last < 60_000) return;
    alertLogged.set(code, t);
    accessLog.append(
      (async () => ({
        v: 1 as const,
        t,
        k: 'alert' as const,
        alert,
        code,
        ...(peer?.startsWith('huk_') ? { peer: await keyHashOf(peer) } : {}),
      }))(),
    );
  };
  const invites = await InviteStore.load({
    dataDir: o.dataDir,
    deviceId: id.deviceId,
    acl: () => acl,
    send: (to, m) => channels.send(to, m),
    now: () => env.now(),
    log: accessLog,
    ...o.invites,
  });
  const events = new EventPipeline({
    onSealed: (e) => {
      if (e.clip && e.readers.length) {
        const clipId = e.clip;
        const epoch = acl?.state.ver ?? 0;
        const t = env.now();
        accessLog.append(
          (async () => ({
            v: 1 as const,
            t,
            k: 'clip/sealed' as const,
            camera: e.camera,
            clip: await idHashOf(clipId),
            epoch,
            recipients: [...new Set(await Promise.all(e.readers.map((r) => keyHashOf(r))))]
              .sort()
              .slice(0, 32),
          }))(),
        );
      }
      if (e.clip)
        void push.clipReady({
          type: e.type,
          cam: e.camera,
          t: e.t,
          clip: e.clip,
          ...(e.thumb ? { thumb: e.thumb } : {}),
        });
    },
    dataDir: o.dataDir,
    device: id.signer,
    env,
    log,
    recipients: (camera, now, r) => readers.recipients(acl, camera, now, r),
    retention: (camera) => o.media.retention?.(camera),
    ...(o.events?.outboxBytes !== undefined ? { outboxBytes: o.events.outboxBytes } : {}),
    // The server's blob store, unless the caller gives its own sink or turns uploads off.
    ...(o.events?.sink
      ? { sink: o.events.sink }
      : o.events?.upload === false
        ? {}
        : {
            sink: blobClientSink({
              client: new BlobClient({ serverUrl: o.serverUrl, signer: id.signer, env }),
              device: id.signer,
              owners: () => acl?.owners ?? [],
            }),
          }),
    ...(o.events?.minBackoffMs !== undefined ? { minBackoffMs: o.events.minBackoffMs } : {}),
    ...(o.events?.maxBackoffMs !== undefined ? { maxBackoffMs: o.events.maxBackoffMs } : {}),
  });
  const stopRecordings = o.media.onRecording?.((r) => void events.handle(r));
  // Notifications: one when motion starts, a second when its clip is sealed (issue 9).
  const stopCameraEvents = o.media.onCameraEvent?.((e) => {
    if (e.phase === 'start') void push.notify({ type: e.kind, cam: e.camera, t: Math.round(e.at) });
  });
  const serverKeyPin = o.pinServerKey === false ? undefined : fileServerKeyPin(o.dataDir, o.acceptServerKey);
  serverKeyPin?.get(); // a damaged pin file stops the start, not a connection attempt
  const wsUrl = `${o.serverUrl.replace(/^http/, 'ws').replace(/\/$/, '')}/ws`;
  const client = new RendezvousClient({
    url: wsUrl,
    signer: id.signer,
    role: 'device',
    env,
    ...(o.pinnedCertSha256 ? { pinnedCertSha256: o.pinnedCertSha256 } : {}),
    ...(o.insecure ? { insecure: true } : {}),
    ...(o.minBackoffMs !== undefined ? { minBackoffMs: o.minBackoffMs } : {}),
    ...(o.maxBackoffMs !== undefined ? { maxBackoffMs: o.maxBackoffMs } : {}),
    log: (level, msg, extra) => log[level]({ ...extra }, msg),
    ...(serverKeyPin ? { serverKeyPin } : {}),
  });
  const push = new PushNotifier({
    dataDir: o.dataDir,
    acl: () => acl,
    transport: rendezvousPushTransport(client),
    env,
    log,
    ...o.push,
  });
  reportLogError = (entry, err) => emit({ kind: 'access-log-error', entry, err });
  const emit = (e: AgentEvent) => {
    try {
      o.onEvent?.(e);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'onEvent threw');
    }
    const { kind, ...rest } = e as { kind: string };
    const fields = Object.fromEntries(
      Object.entries(rest).map(([k, v]) => [
        k,
        typeof v === 'string' && v.startsWith('huk_') ? shortId(v) : v,
      ]),
    );
    log.info(fields, kind);
  };
  // Grant holders now (owner and members in time): the server shows them our presence and favours
  // their messages (the `allow` frame); everyone else is a stranger, answered at a trickle (R3).
  let holders = new Set<string>(acl?.holders(env.now()) ?? []);
  let allowSent: string | undefined;
  const publishAllow = (force = false) => {
    const list = acl?.holders(env.now()) ?? [];
    holders = new Set(list);
    const text = list.join(',');
    if (!force && text === allowSent) return;
    if (client.send({ t: 'allow', k: list })) allowSent = text;
  };
  const strangers = new StrangerReplies({
    ...o.strangerReplies,
    isHolder: (k) => holders.has(k),
    now: () => env.now(),
  });
  const toAnyone = (to: string, m: unknown): boolean => strangers.allow(to) && client.sendTo(to, m);
  // Once a minute: grants that expired or began leave or join the list, and one line says how
  // many replies to strangers were dropped.
  const housekeeping = setInterval(() => {
    publishAllow();
    const d = strangers.takeDropped();
    if (d.dropped)
      log.warn(d, 'dropped replies to keys without a grant over their rate (a flood from strangers?)');
  }, 60_000);
  housekeeping.unref();
  const channels = new DeviceChannels({
    signer: id.signer,
    deviceId: id.deviceId,
    env,
    route: toAnyone,
    ...(o.unsealedForTests ? { unsealedForTests: true } : {}),
  });
  /** Which channel each session (viewer/sid) came on, so that its replies go back on it. */
  const sessionChannel = new Map<string, string>();
  const sidOf = (m: { t: string; [k: string]: unknown }): string | undefined => {
    if (typeof m.sid === 'string') return m.sid;
    const b = (m.env as { b?: { sid?: unknown } } | undefined)?.b;
    return typeof b?.sid === 'string' ? b.sid : undefined;
  };
  const noteSession = (from: string, m: ViewerMessage, channel: string) => {
    const sid = sidOf(m);
    if (!sid || !channel) return;
    sessionChannel.delete(`${from}/${sid}`);
    sessionChannel.set(`${from}/${sid}`, channel);
    if (sessionChannel.size > 4096) sessionChannel.delete(sessionChannel.keys().next().value as string);
  };
  const toViewer = (to: string, m: DeviceMessage, channel?: string): void => {
    const sid = sidOf(m);
    if (!channels.send(to, m, channel ?? (sid ? sessionChannel.get(`${to}/${sid}`) : undefined)))
      log.warn({ viewer: shortId(to), t: m.t }, 'no channel to this viewer: message dropped');
  };
  // Relay (TURN) credentials come only through our `relay` request for a viewer we answer (review
  // R6): one for us before an answer when ours are not fresh, and one for a granted viewer that asks
  // (`relay/ask`) ahead of its offer, at most every RELAY_ASK_MS per viewer.
  let relayRef = 0;
  const relayAsked = new Map<string, number>();
  const askRelay = (viewer: string): string | undefined => {
    const ref = `relay-${++relayRef}`;
    return client.send({ t: 'relay', v: viewer, ref }) ? ref : undefined;
  };
  const relayIce = async (viewer: string): Promise<IceServer[]> => {
    if (!client.core.relayFresh()) {
      const ref = askRelay(viewer);
      if (ref) await client.core.nextRelay(o.relayWaitMs ?? 2_000, ref);
    }
    return client.ice;
  };
  const onRelayAsk = (viewer: string) => {
    const now = Date.now();
    const last = relayAsked.get(viewer);
    if (last !== undefined && now - last < RELAY_ASK_MS) return;
    relayAsked.delete(viewer);
    relayAsked.set(viewer, now);
    if (relayAsked.size > 1024) relayAsked.delete(relayAsked.keys().next().value as string);
    askRelay(viewer);
  };
  const sessions = new SessionManager({
    deviceId: id.deviceId,
    signer: id.signer,
    env,
    media: o.media,
    acl: () => acl,
    send: (to, m) => toViewer(to, m as DeviceMessage),
    iceServers: (viewer) => relayIce(viewer),
    log: accessLog,
    ...(o.sweepMs !== undefined ? { sweepMs: o.sweepMs } : {}),
    onEvent: (e) => {
      emit(e);
      if ((e.kind === 'session-refused' && e.attack) || e.kind === 'media-attack')
        logAlert('possible-attack', e.code, e.viewer);
      if (e.kind === 'session-refused' && e.attack)
        log.warn(
          { viewer: shortId(e.viewer), code: e.code },
          'refused an offer that failed verification: possible attack',
        );
      if (e.kind === 'clock-skew') {
        const skewS = Math.round(e.skewMs / 1000);
        const drift = client.clockOffsetMs;
        // The server's time (not authenticated) only says whose clock is likely off.
        const ours = drift !== undefined && Math.abs(drift - e.skewMs) < Math.abs(e.skewMs) / 2;
        log.warn(
          {
            viewer: shortId(e.viewer),
            code: 'E_CLOCK_SKEW',
            skewS,
            serverOffsetS: drift === undefined ? null : Math.round(drift / 1000),
          },
          ours
            ? `refused an offer: clock is off by ${skewS} s (this device's clock, the server's time says: set it, e.g. NTP)`
            : `refused an offer: clock is off by ${skewS} s (the viewer's clock, or an old offer replayed)`,
        );
      }
      if (e.kind === 'media-attack')
        log.warn(
          { viewer: shortId(e.viewer), sid: e.sid, code: e.code },
          'the media peer could not prove the signed DTLS fingerprint: possible attack (nothing was sent)',
        );
    },
  });
  const pairing = new PairingHost({
    deviceId: id.deviceId,
    signer: id.signer,
    env,
    serverUrl: o.serverUrl,
    windowMs: o.pairingWindowMs ?? 10 * 60_000,
    ...(o.pairingPolicies ? { policies: o.pairingPolicies } : {}),
    ...(o.pairingIterations !== undefined ? { iterations: o.pairingIterations } : {}),
    stateFile: pairingStatePath(o.dataDir),
    log: accessLog,
    send: (to, m) => void toAnyone(to, m),
    register: (tag) => client.send({ t: 'pair/register', tag }),
    isPaired: () => acl !== undefined,
    onPaired: (v) => {
      if (v.role === 'owner' && !acl) {
        const next = Acl.create(id.deviceId, v.viewerKey, { timeZone });
        saveAcl(o.dataDir, next); // persisted before the viewer hears it is paired
        acl = next;
        const t = env.now();
        accessLog.append(
          (async () => {
            const h = await keyHashOf(v.viewer);
            return {
              v: 1 as const,
              t,
              k: 'acl/grant' as const,
              subject: h,
              by: h,
              ver: 0,
              role: 'owner' as const,
            };
          })(),
        );
        publishAllow();
        emit({ kind: 'acl-created', owner: v.viewer });
      } else {
        // A member window (re-opened on the device): the device now knows the viewer's key, but
        // only an owner-signed grant (acl/update) lets it watch.
        emit({ kind: 'member-paired-needs-grant', viewer: v.viewer });
      }
    },
    onWindow: (info) => {
      try {
        o.onPairingWindow?.(info);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'onPairingWindow threw');
      }
    },
    onEvent: emit,
  });

  client.on('ready', (f: { impostors?: number }) => {
    log.info({ device: id.deviceId }, 'connected to the rendezvous server');
    const drift = client.clockOffsetMs;
    if (drift !== undefined && Math.abs(drift) > CLOCK_WARN_MS) {
      const s = Math.round(-drift / 1000);
      log.warn(
        { code: 'E_CLOCK_SKEW', clockOffsetS: s },
        `this device's clock is off by ${s} s from the server's (no RTC or NTP?): offers will be refused until it is set`,
      );
      emit({ kind: 'clock-drift', offsetMs: -drift });
    }
    if (f.impostors) {
      log.warn(
        { count: f.impostors },
        'someone tried to connect as this device without its key: possible attack',
      );
      emit({ kind: 'impostor-alert', count: f.impostors });
      logAlert('impostor', 'E_IMPOSTOR');
    }
    pairing.reregister();
    allowSent = undefined;
    publishAllow(true);
    // The channels outlive the WebSocket (same process, same keys); a restart loses them, and
    // viewers then re-handshake on chan/reset.
  });
  client.on('server-key-changed', (e: { pinned: string | undefined; offered: string; reason: string }) =>
    emit({ kind: 'server-key-changed', ...e }),
  );
  client.on('alert', (f: { code: string; count: number }) => {
    log.warn({ code: f.code, count: f.count }, 'alert from the server: possible attack');
    emit({ kind: 'impostor-alert', count: f.count });
    logAlert(f.code === 'E_IMPOSTOR' ? 'impostor' : 'possible-attack', f.code);
  });
  client.on('error-frame', (f: { code: string; ref?: string }) => {
    if (f.code === 'E_TAG_TAKEN') {
      log.info({}, 'the server refused our pairing lookup tag as taken: drawing a new code');
      void pairing
        .onTagTaken()
        .catch((e) => log.error({ err: (e as Error).message }, 'cannot renew the pairing code'));
    } else if (f.code !== 'E_OFFLINE') {
      log.warn({ code: f.code }, 'error from the server');
    }
  });
  client.on('recv', (from: string, m: unknown) => {
    void onMessage(from, m).catch((e) =>
      log.error({ code: (e as HearthError).code, err: (e as Error).message }, 'failed to handle a message'),
    );
  });

  async function onMessage(from: string, raw: unknown): Promise<void> {
    const r = await channels.receive(from, raw);
    if (r.kind === 'pair') return pairing.onMessage(from, r.m);
    if (r.kind === 'rejected') {
      if (r.error.code === 'E_STALE') {
        // Signed by the viewer's key (verify checks the signature first) but stamped outside the
        // window: a clock is off, not a forgery (review R13).
        const drift = client.clockOffsetMs;
        const s = drift === undefined ? undefined : Math.round(-drift / 1000);
        log.warn(
          { viewer: shortId(from), code: 'E_CLOCK_SKEW', clockOffsetS: s ?? null },
          s !== undefined && Math.abs(drift ?? 0) > CLOCK_WARN_MS
            ? `refused a channel message stamped outside the window: clock is off by ${s} s (this device's clock, the server's time says: set it, e.g. NTP)`
            : "refused a channel message stamped outside the window: the viewer's clock is off, or an old message was replayed",
        );
        emit({ kind: 'clock-skew', viewer: from, skewMs: -(drift ?? 0) });
        return;
      }
      if (r.attack) {
        log.warn(
          { viewer: shortId(from), code: r.error.code },
          'a channel message failed verification: possible attack',
        );
        emit({ kind: 'channel-attack', viewer: from, code: r.error.code });
        logAlert('possible-attack', r.error.code, from);
      }
      return;
    }
    if (r.kind !== 'message') return;
    const msg = r.m;
    const via = r.channel || undefined;
    const reply = (m: DeviceMessage) => toViewer(from, m, via);
    switch (msg.t) {
      case 'session/offer':
        noteSession(from, msg, r.channel);
        return sessions.onOffer(from, msg);
      case 'session/ice':
        noteSession(from, msg, r.channel);
        return sessions.onIce(from, msg);
      case 'session/close':
        sessions.onClose(from, msg);
        return;
      case 'relay/ask': {
        // Only for a key with a live grant now; a stranger's ask gets nothing, not even a reply.
        if (acl?.authorize(from, 'live', env.now()).allowed) onRelayAsk(from);
        return;
      }
      case 'cameras': {
        const d = acl?.authorize(from, 'live', env.now());
        if (!d?.allowed) {
          reply({ t: 'cameras/refused', code: d && !d.allowed ? d.error.code : 'E_NO_GRANT' });
          return;
        }
        const now = env.now();
        const list = o.media
          .cameras()
          .filter((c) => acl?.authorize(from, 'live', now, c.name).allowed)
          .map((c) => ({ name: c.name, online: c.online }));
        reply({ t: 'cameras', list, role: d.role });
        return;
      }
      case 'acl/update': {
        if (!acl) {
          reply({ t: 'acl/error', code: 'E_NO_GRANT' });
          return;
        }
        try {
          const update = decodeEnvelope(msg.env);
          const next = await acl.apply(update, env.now());
          const dropped = acl.dropped(next, env.now());
          saveAcl(o.dataDir, next);
          const prev = acl;
          acl = next;
          const t = env.now();
          try {
            for (const entry of await aclLogEntries(prev, next, update.k, t)) accessLog.append(entry);
          } catch (err) {
            reportLogError('acl/*', (err as Error).message);
          }
          // Close what the update ends first, and publish the new allow list only once those
          // `session/closed` messages are out: until then a revoked viewer still sees the device
          // (a viewer forgets a device's channel when it goes offline), so its view stops at once.
          const closed = sessions.sweep();
          void channels.flushed().then(() => publishAllow());
          void invites
            .onAclApplied(next)
            .catch((e) => log.error({ err: (e as Error).message }, 'cannot mark approved invites'));
          emit({ kind: 'acl-updated', ver: next.state.ver, dropped: dropped.length, closed });
          reply({ t: 'acl/ok', ver: next.state.ver });
        } catch (e) {
          const code = e instanceof HearthError ? e.code : 'E_INTERNAL';
          // An escalation attempt: a member signing a grant, a forged revocation of the owner, a
          // replayed old ACL, the recovery key beyond its scope, from a key that is not an owner.
          if (!acl.isOwner(from)) {
            log.warn(
              { viewer: shortId(from), code },
              'refused an ACL update from a non-owner: possible attack',
            );
            logAlert('possible-attack', code, from);
          }
          reply({ t: 'acl/error', code });
        }
        return;
      }
      case 'reader/key': {
        try {
          await readers.register(from, msg.rk, acl, env.now());
          emit({ kind: 'reader-key', viewer: from, ok: true });
          reply({ t: 'reader/ok' });
        } catch (e) {
          const code = e instanceof HearthError ? e.code : 'E_INTERNAL';
          emit({ kind: 'reader-key', viewer: from, ok: false, code });
          reply({ t: 'reader/error', code });
        }
        return;
      }
      case 'push/sub':
        reply(push.subscribe(from, msg.sub));
        return;
      case 'invite/create':
      case 'invite/redeem':
      case 'invite/list':
      case 'invite/deny':
        return invites.onMessage(from, msg, reply);
      case 'log/get': {
        // Owners only: the log names who watched when (as key hashes), which members need not see.
        if (!acl?.isOwner(from)) {
          reply({ t: 'log/error', code: 'E_NO_GRANT' });
          return;
        }
        try {
          reply(await accessLog.update(msg.from, msg.max, msg.wit));
        } catch (e) {
          log.error({ err: (e as Error).message }, 'access log: cannot answer log/get');
          reply({ t: 'log/error', code: e instanceof RangeError ? 'E_TOO_LARGE' : 'E_INTERNAL' });
        }
        return;
      }
      case 'household/erase': {
        // S8: an owner erases the household. The device answers first; whoever runs it (the CLI)
        // then stops this agent, erases the server-side data and the data directory, and starts
        // again as a new device. A non-owner's request is an escalation attempt: refused and logged.
        const fail = (code: string, attack: boolean) => {
          if (attack) {
            log.warn({ viewer: shortId(from), code }, 'refused an erase request: possible attack');
            logAlert('possible-attack', code, from);
          }
          reply({ t: 'household/error', code: code as never });
        };
        if (!acl?.isOwner(from)) return fail('E_NO_GRANT', true);
        try {
          await acl.checkEraseRequest(decodeEnvelope(msg.env), env.now());
        } catch (e) {
          return fail(e instanceof HearthError ? e.code : 'E_INTERNAL', true);
        }
        const onErase = o.onErase;
        if (!onErase) return fail('E_UNSUPPORTED', false);
        log.warn({ viewer: shortId(from) }, 'an owner erased the household: this device resets itself');
        reply({ t: 'household/erasing' });
        void channels.flushed().then(() => onErase());
        return;
      }
      case 'acl/get': {
        if (acl && !acl.isOwner(from) && msg.rp) {
          // A lost phone's recovery: the recovery key's proof for this very viewer gets it the ACL
          // (the version and owners its recovery update must name). A bad proof is logged.
          try {
            await acl.checkRecoveryProof(decodeEnvelope(msg.rp), from, env.now());
          } catch (e) {
            const code = e instanceof HearthError ? e.code : 'E_INTERNAL';
            log.warn({ viewer: shortId(from), code }, 'a recovery proof failed: possible attack');
            logAlert('possible-attack', code, from);
            reply({ t: 'acl/error', code });
            return;
          }
          log.info({ viewer: shortId(from) }, 'recovery: the recovery key asked for the ACL');
          reply({ t: 'acl', state: acl.toJSON() });
          return;
        }
        if (!acl?.isOwner(from)) {
          reply({ t: 'acl/error', code: 'E_NO_GRANT' });
          return;
        }
        reply({ t: 'acl', state: acl.toJSON() });
        return;
      }
      default:
        return;
    }
  }

  await pairing.start();
  client.start();

  return {
    deviceId: id.deviceId,
    pairing: () => pairing.info(),
    pairingState: () => pairing.snapshot(),
    acl: () => acl,
    sessions,
    client,
    channels,
    readers,
    events,
    push,
    invites,
    accessLog,
    openPairing: () => pairing.open(),
    async close() {
      clearInterval(housekeeping);
      stopRecordings?.();
      stopCameraEvents?.();
      events.close();
      sessions.dispose();
      pairing.dispose();
      client.close();
      await accessLog.close();
    },
  };
}
