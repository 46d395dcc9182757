/**
 * The app shell: opens the device directory, connects to the rendezvous, routes between the screens
 * (pair-screen.ts, home-screen.ts, live-screen.ts, timeline-screen.ts; the household screens
 * members-screen.ts, invite-screen.ts, log-screen.ts, recovery-screen.ts; alarm.ts for error and attack
 * states), feeds the rendezvous and the sealed channels' traffic to them, sends each paired device
 * our reader key once (`reader/key`), and exposes a small test hook (`window.__hearth`).
 */
import { type CryptoEnv, camerasRequest, ViewerChannels } from '@hearth/protocol';
import type { BlobApi } from '../clips/blob-api.js';
import { latestPictures } from '../clips/latest.js';
import type { BlobContext } from '../clips/open.js';
import { parseRoute, type Route } from '../core/links.js';
import { dayOf, parseDay } from '../core/timeline.js';
import { IDLE } from '../core/view-state.js';
import type { LastError, SignalingPort } from '../live/live-view.js';
import { ChannelHouseholdApi, type DeviceMsg } from '../net/household.js';
import { idbLogStore, LogClient } from '../net/log.js';
import { ClientLogSource } from '../net/log-source.js';
import type { RendezvousClient } from '../net/rendezvous.js';
import type { PairedDevice } from '../store/devices.js';
import { DeviceDirectory } from '../store/directory.js';
import type { Db } from '../store/idb.js';
import type { ViewerIdentity } from '../store/keys.js';
import type { ReaderKeyHandle } from '../store/reader-key.js';
import { type AppError, channelAttack, notPairedScreen, setAlarm } from './alarm.js';
import { h, replace } from './dom.js';
import { homeScreen } from './home-screen.js';
import { JoinScreen } from './invite-screen.js';
import { LiveScreen } from './live-screen.js';
import { LogScreen } from './log-screen.js';
import { type HouseholdContext, MembersScreen } from './members-screen.js';
import { Notifications } from './notifications.js';
import { PairScreen } from './pair-screen.js';
import { fromB64 } from './picture.js';
import { RecoverScreen, RecoveryCard } from './recovery-screen.js';
import { TimelineScreen } from './timeline-screen.js';

const noop = (): void => undefined;

/** How long a live view waits for relay credentials before its offer (ms). */
const RELAY_WAIT_MS = 1_500;

/** The test hook (documented in the README). */
export interface HearthHook {
  readonly state: string;
  framesDecoded(): number;
  readonly lastError: LastError | { code: string; message: string } | undefined;
  pairedDevices(): PairedDevice[];
  readonly viewerKey: string;
  readonly rendezvous: string;
  /** The `rk` this browser sends devices (undefined: no X25519 here). */
  readonly readerKey: string | undefined;
}

/** Recorded events: the blob store client and our reader key, each absent when unavailable. */
export interface ClipDeps {
  api?: BlobApi;
  reader?: ReaderKeyHandle;
}

export class App {
  private readonly dir: DeviceDirectory;
  private live: LiveScreen | undefined;
  private timeline: TimelineScreen | undefined;
  /** Latest verified picture per `deviceId/camera`, for the home tiles (loaded once per session). */
  private readonly pictures = new Map<string, Uint8Array>();
  /** Devices whose tile pictures are being fetched (one round at a time per device). */
  private readonly picturesLoading = new Set<string>();
  /** Devices we sent our reader key to in this session (each is sent it until it says `reader/ok`). */
  private readonly readerSent = new Set<string>();
  private readonly pairing: PairScreen;
  private readonly recover: RecoverScreen;
  private lastError: AppError | undefined;
  private readonly main: HTMLElement;
  private readonly netDot: HTMLElement;
  private route: Route = { kind: 'home' };
  /** A QR link read at startup, held in memory only (removed from the address bar at once). */
  private pendingLink: string | undefined;
  /** The sealed channels to paired devices (everything but pairing goes through them). */
  private readonly channels: ViewerChannels;
  /** What the live view signals through: the sealed channel over the rendezvous. */
  private readonly sealed: SignalingPort;
  /** Web Push: the settings control and the in-app toast. */
  readonly notifications: Notifications;
  /** Household requests and replies (ACL, invites, access log) over the sealed channels. */
  private readonly household: ChannelHouseholdApi;
  private readonly hctx: HouseholdContext;
  /** The household screen shown now (people, log), stopped on navigation. */
  private panel: { stop(): void; refresh?(): void; deviceId?: string } | undefined;
  private readonly join: JoinScreen;
  /** An invite link read at startup, held in memory only (removed from the address bar at once). */
  private pendingInvite: string | undefined;
  /** Recovery keys of devices just paired as owner, shown once on the home screen until done. */
  private readonly recovery = new Map<string, RecoveryCard>();
  /** Settles once every sealed message received so far was opened (and handled). */
  private received: Promise<void> = Promise.resolve();

  constructor(
    root: HTMLElement,
    db: Db,
    private readonly me: ViewerIdentity,
    private readonly rv: RendezvousClient,
    private readonly env: CryptoEnv,
    private readonly clips: ClipDeps = {},
  ) {
    const dir = new DeviceDirectory(db);
    this.dir = dir;
    this.channels = new ViewerChannels({
      signer: me.signer,
      env,
      pinned: (d) => dir.pinnedKey(d),
      route: (to, m) => rv.sendTo(to, m) !== undefined,
      // TEST ONLY (the control of the server-dump test): set by a test's init script.
      ...((globalThis as { __hearthUnsealedForTests?: unknown }).__hearthUnsealedForTests === true
        ? { unsealedForTests: true }
        : {}),
    });
    const channels = this.channels;
    const household = new ChannelHouseholdApi((d, m) => rv.ready && channels.send(d, m));
    this.household = household;
    this.hctx = {
      api: this.household,
      log: new ClientLogSource(
        new LogClient({
          signer: me.signer,
          keyText: me.keyText,
          send: (d, m) => household.logRequest(d, m),
          fetch: (url, init) => fetch(url, init),
          store: idbLogStore(db),
          env,
          device: async (d) => {
            const dev = dir.find(d);
            if (!dev) return undefined;
            // The owners' keys: only their cosignatures count ("verified by N of your devices").
            const acl = await household.getAcl(d).catch(() => undefined);
            return { deviceId: d, deviceKey: dev.deviceKey, witnesses: acl?.owners ?? [] };
          },
        }),
      ),
      me,
      env,
      origin: location.origin,
      pending: new Map(),
      erased: async (d) => {
        await dir.forget(d);
        this.go('#/');
      },
    };
    this.household.onInviteRequest((d) => {
      if (this.panel?.deviceId === d) this.panel.refresh?.();
    });
    this.household.onInviteApproved((d) => {
      const dev = dir.find(d);
      if (dev?.role === 'invited') void dir.add({ ...dev, role: 'member' });
      channels.send(d, camerasRequest());
      this.join.approved();
    });
    this.notifications = new Notifications({
      devices: () => dir.ids(),
      send: (d, m) => rv.ready && channels.send(d, m),
      label: (d) => dir.find(d)?.label ?? d,
    });
    this.sealed = {
      get ready() {
        return rv.ready;
      },
      get ice() {
        return rv.ice;
      },
      // Relay credentials come through the device (review R6): ask it when ours are not fresh.
      relay: async (d) => {
        if (rv.relayFresh()) return;
        if (rv.ready && channels.send(d, { t: 'relay/ask' })) await rv.nextRelay(RELAY_WAIT_MS);
      },
      sendTo: (to, m) => (rv.ready && channels.send(to, m as { t: string }) ? 'sealed' : undefined),
    };
    this.netDot = h('span', {
      class: 'net net-down',
      title: 'server: connecting',
      role: 'status',
      'aria-label': 'server connection',
    });
    this.main = h('main', { id: 'main' });
    this.recover = new RecoverScreen(
      this.main,
      this.hctx,
      dir,
      (dev) => this.onPaired(dev),
      (dev) => rv.watch([dev.deviceId]),
    );
    this.join = new JoinScreen(this.main, {
      api: this.household,
      me,
      env,
      dir,
      origin: location.origin,
      joined: (dev) => rv.watch([dev.deviceId]),
    });
    this.pairing = new PairScreen(this.main, {
      rv,
      me,
      env,
      dir,
      onPairRoute: () => this.route.kind === 'pair',
      go: (hash) => this.go(hash),
      paired: (dev) => {
        this.onPaired(dev);
        return undefined;
      },
      failed: (e) => {
        this.lastError = e;
      },
    });
    replace(
      root,
      h(
        'header',
        { class: 'bar' },
        h(
          'a',
          { class: 'brand', href: '#/' },
          h('img', { src: '/icon.svg', alt: '', width: 28, height: 28 }),
          'Hearth',
        ),
        this.netDot,
      ),
      this.main,
    );
  }

  /** The test hook. */
  hook(): HearthHook {
    const self = this;
    return {
      get state() {
        return self.live ? self.live.view.state.name : IDLE.name;
      },
      framesDecoded: () => self.live?.view.framesDecoded() ?? 0,
      get lastError() {
        return self.live?.view.lastError ?? self.lastError;
      },
      pairedDevices: () => self.dir.all().map((d) => ({ ...d })),
      viewerKey: this.me.keyText,
      get rendezvous() {
        return self.rv.status;
      },
      readerKey: this.clips.reader?.rk,
    };
  }

  async start(): Promise<void> {
    await this.dir.load();
    this.rv.on('status', (s) => {
      this.netDot.className = `net net-${s === 'ready' ? 'up' : 'down'}`;
      this.netDot.title = `server: ${s === 'ready' ? 'connected' : s}`;
      // The channels outlive the WebSocket: replies in flight across a reconnect still open.
      if (s === 'down') this.live?.view.onSignalingDown();
    });
    this.rv.on('ready', () => {
      this.rv.watch(this.dir.ids());
      for (const d of this.dir.ids()) this.channels.send(d, camerasRequest());
      this.live?.view.onSignalingReady();
    });
    this.rv.on('presence', (f) => {
      const was = this.dir.setOnline(f.d, f.online);
      // It may come back restarted, keyless: forget its channel, but only once the messages that
      // came before this frame are opened (a revoked viewer's `session/closed` comes just before
      // the device's presence goes away for it, and must still stop the live view).
      if (was === true && !f.online) void this.received.then(() => this.channels.reset(f.d));
      if (this.live?.deviceId === f.d) this.live.view.onPresence(f.online);
      if (f.online && was !== true && this.dir.isPaired(f.d)) this.channels.send(f.d, camerasRequest());
      if (this.route.kind === 'home') this.render();
    });
    this.rv.on('recv', (f) => this.onRecv(f.from, f.m));
    this.notifications.start();
    this.rv.on('pair/found', (f) => this.pairing.onFound(f));
    this.rv.on('error', (f) => {
      if (this.pairing.onServerError(f)) return;
      this.lastError = { code: f.code, message: 'server error' };
    });
    addEventListener('online', () => this.rv.nudge());
    addEventListener('hashchange', () => this.navigate());
    addEventListener('popstate', () => this.navigate());
    this.navigate();
    this.rv.start();
  }

  private onRecv(from: string, raw: unknown): void {
    const opened = this.channels.receive(from, raw);
    this.received = this.received.then(() => opened.then(noop, noop));
    void opened.then((inc) => {
      if (inc.kind === 'pair') {
        this.pairing.onMessage(from, inc.m);
        return;
      }
      if (!this.dir.isPaired(from)) return; // only devices we pinned may talk to us
      if (inc.kind === 'rejected') {
        if (inc.attack && this.live?.deviceId === from)
          this.live.view.onChannelAttack(inc.error.code, 'the sealed channel to the device failed a check');
        if (inc.attack) this.lastError = channelAttack(inc.error.code);
        return;
      }
      if (inc.kind === 'handled') {
        // The device lost our channel (it restarted): ask again on a new one.
        if (inc.event === 'reset') {
          this.household.drop(from);
          this.channels.send(from, camerasRequest());
        }
        return;
      }
      if (inc.kind !== 'message') return;
      const m = inc.m;
      if (this.household.handle(from, m as DeviceMsg)) return;
      if (m.t === 'cameras') {
        this.dir.setCameras(from, m.list);
        const dev = this.dir.find(from);
        if (dev && m.role && dev.role !== m.role) void this.dir.add({ ...dev, role: m.role });
        this.sendReaderKey(from);
        this.loadPictures(
          from,
          m.list.map((c) => c.name),
        );
        if (this.route.kind === 'home') this.render();
      } else if (m.t === 'reader/ok') {
        void this.clips.reader?.markAcked(from);
      } else if (m.t === 'reader/error') {
        this.lastError = { code: m.code, message: 'the device refused our reader key' };
      } else if (m.t === 'push/ok' || m.t === 'push/error') {
        this.notifications.onReply(from, m);
      } else if (m.t === 'cameras/refused') {
        this.dir.setRefused(from, m.code);
        if (this.route.kind === 'home') this.render();
      } else if (this.live && this.live.deviceId === from) {
        void this.live.view.onMessage(m);
      }
    });
  }

  // ------------------------------------------------------------------ recorded events

  /** Once per device (until it says `reader/ok`): our signed reader key, over the sealed channel. */
  private sendReaderKey(deviceId: string): void {
    const r = this.clips.reader;
    if (!r || r.acked(deviceId) || this.readerSent.has(deviceId)) return;
    if (this.channels.send(deviceId, { t: 'reader/key', rk: r.rk })) this.readerSent.add(deviceId);
  }

  /** What opening a device's blobs needs, or why it cannot be done here. */
  private blobContext(deviceId: string): { ctx?: BlobContext; why?: string } {
    const key = this.dir.pinnedKey(deviceId);
    if (!key) return { why: 'This device is not paired on this phone.' };
    if (!this.clips.reader)
      return { why: 'This browser has no X25519 in WebCrypto, so it cannot open recorded clips. Update it.' };
    if (!this.clips.api) return { why: 'Recorded events are not available from this server.' };
    return {
      ctx: { api: this.clips.api, dev: deviceId, pinnedDeviceKey: key, reader: this.clips.reader.reader },
    };
  }

  private loadPictures(deviceId: string, cameras: string[]): void {
    const { ctx } = this.blobContext(deviceId);
    if (!ctx || cameras.length === 0 || this.picturesLoading.has(deviceId)) return;
    this.picturesLoading.add(deviceId);
    void latestPictures(ctx, cameras, Date.now(), fromB64)
      .then((m) => {
        let changed = false;
        for (const [cam, pic] of m) {
          const k = `${deviceId}/${cam}`;
          if (this.pictures.get(k) !== pic) changed = true;
          this.pictures.set(k, pic);
        }
        if (changed && this.route.kind === 'home') this.render();
      })
      .catch(() => undefined)
      .finally(() => this.picturesLoading.delete(deviceId));
  }

  /** Back on the home screen: fetch each camera's newest picture again (events since). */
  private refreshPictures(): void {
    for (const d of this.dir.all()) {
      const cams = this.dir.cameras(d.deviceId);
      if (cams && 'list' in cams)
        this.loadPictures(
          d.deviceId,
          cams.list.map((c) => c.name),
        );
    }
  }

  // ------------------------------------------------------------------ routing

  private navigate(): void {
    const wasJoin = this.route.kind === 'join';
    const route = parseRoute(location);
    if (route.kind === 'pair-link') {
      // Keep the setup secret out of the address bar, history and any later Referer.
      this.pendingLink = route.link;
      history.replaceState(null, '', '/#/pair');
      this.route = { kind: 'pair' };
    } else if (route.kind === 'invite-link') {
      // The invite's secret, like a pairing link's: out of the address bar, history and Referer.
      this.pendingInvite = route.payload;
      history.replaceState(null, '', '/#/join');
      this.route = { kind: 'join' };
    } else {
      this.route = route;
    }
    if (this.route.kind !== 'live' && this.live) {
      this.live.stop();
      this.live = undefined;
      setAlarm(false);
    }
    if (this.timeline) {
      this.timeline.stop();
      this.timeline = undefined;
      setAlarm(false);
    }
    if (this.panel) {
      this.panel.stop();
      this.panel = undefined;
      setAlarm(false);
    }
    if (this.route.kind === 'home' && this.dir.size === 0) this.route = { kind: 'pair' };
    if (this.route.kind === 'join') {
      const payload = this.pendingInvite;
      this.pendingInvite = undefined;
      // One change of the fragment fires both popstate and hashchange: the second sees only
      // `#/join` (the link is gone from the address bar) and must not replace the screen drawn.
      if (payload === undefined && wasJoin) return;
      this.join.render(payload);
      return;
    }
    this.render();
    if (this.route.kind === 'home') this.refreshPictures();
    if (this.pendingLink && this.route.kind === 'pair') {
      const link = this.pendingLink;
      this.pendingLink = undefined;
      this.pairing.confirmLink(link); // pairs only when the user says so (review R8)
    }
  }

  /** A device this phone now holds (paired, or recovered as owner): watch it, ask its cameras. */
  private onPaired(dev: PairedDevice): void {
    this.rv.watch([dev.deviceId]);
    this.channels.send(dev.deviceId, camerasRequest());
    void this.notifications.offerTo(dev.deviceId);
    if (dev.role === 'owner')
      this.recovery.set(
        dev.deviceId,
        new RecoveryCard(this.hctx, dev, () => {
          this.recovery.delete(dev.deviceId);
          if (this.route.kind === 'home') this.render();
        }),
      );
  }

  private go(hash: string): void {
    if (location.hash === hash) this.navigate();
    else location.hash = hash;
  }

  private render(): void {
    switch (this.route.kind) {
      case 'pair':
        this.pairing.render();
        return;
      case 'live':
        this.renderLive(this.route.deviceId, this.route.camera);
        return;
      case 'people':
      case 'log':
        this.renderHousehold(this.route);
        return;
      case 'join':
        return; // drawn once by navigate (the link is read once)
      case 'recover':
        this.recover.render();
        return;
      case 'timeline': {
        const day = this.route.day;
        this.renderTimeline(
          this.route.deviceId,
          this.route.camera,
          day && parseDay(day) ? day : dayOf(Date.now()),
        );
        return;
      }
      default:
        replace(
          this.main,
          homeScreen(
            this.dir,
            () => this.navigate(),
            (d, c) => this.pictures.get(`${d}/${c}`),
            this.notifications.control(),
            [...this.recovery.values()].map((c) => c.el),
          ),
        );
    }
  }

  private renderHousehold(r: Extract<Route, { kind: 'people' | 'log' }>): void {
    if (this.panel) return; // one per navigation
    const dev = this.dir.find(r.deviceId);
    if (!dev) {
      replace(this.main, notPairedScreen());
      return;
    }
    const d = dev.deviceId;
    let panel: { stop(): void; refresh?(): void };
    if (r.kind === 'log') {
      panel = new LogScreen(this.main, this.hctx, dev);
    } else {
      const cams = this.dir.cameras(d);
      panel = new MembersScreen(
        this.main,
        this.hctx,
        dev,
        cams && 'list' in cams ? cams.list.map((c) => c.name) : [],
        r.invite === true,
      );
    }
    this.panel = Object.assign(panel, { deviceId: d });
  }

  private renderTimeline(deviceId: string, camera: string, day: string): void {
    if (this.timeline) return; // one per navigation
    const dev = this.dir.find(deviceId);
    if (!dev) {
      replace(this.main, notPairedScreen());
      return;
    }
    const { ctx, why } = this.blobContext(deviceId);
    this.timeline = new TimelineScreen(this.main, deviceId, camera, day, {
      ctx,
      ...(why ? { why } : {}),
      label: dev.label,
    });
  }

  private renderLive(deviceId: string, camera: string): void {
    const cur = this.live;
    if (cur && cur.deviceId === deviceId && cur.camera === camera && this.main.querySelector('#status'))
      return;
    this.live?.stop();
    this.live = undefined;
    const dev = this.dir.find(deviceId);
    if (!dev) {
      replace(this.main, notPairedScreen());
      return;
    }
    this.live = new LiveScreen(this.main, dev, camera, this.dir.online(deviceId), {
      me: this.me,
      env: this.env,
      signaling: this.sealed,
    });
  }
}
