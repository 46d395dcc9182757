/**
 * The app shell: opens the key store, connects to the rendezvous, routes between the pairing
 * screen, the device/camera list and the live view, and exposes a small test hook
 * (`window.__hearth`).
 */
import { type CryptoEnv, camerasRequest, decodeId, parseId, shortId, ViewerChannels } from '@hearth/protocol';
import { liveHref, normalizeManualCode, parseRoute, type Route } from '../core/links.js';
import { IDLE, needsUser, statusText, type ViewState } from '../core/view-state.js';
import { type LastError, LiveView, type SignalingPort } from '../live/live-view.js';
import type { RendezvousClient } from '../net/rendezvous.js';
import {
  type PairInput,
  PairingFailure,
  type PairingRun,
  type PairStep,
  startPairing,
} from '../pairing/flow.js';
import {
  forgetDevice,
  listDevices,
  type PairedDevice,
  pinnedKeyBytes,
  renameDevice,
  saveDevice,
} from '../store/devices.js';
import type { Db } from '../store/idb.js';
import type { ViewerIdentity } from '../store/keys.js';
import { h, replace } from './dom.js';
import { pairFailureText, viewStateHint } from './text.js';

/** Camera list of a device, as last reported by it. */
type Cameras = { list: { name: string; online: boolean }[] } | { refused: string } | undefined;

/** The test hook (documented in the README). */
export interface HearthHook {
  readonly state: string;
  framesDecoded(): number;
  readonly lastError: LastError | { code: string; message: string } | undefined;
  pairedDevices(): PairedDevice[];
  readonly viewerKey: string;
  readonly rendezvous: string;
}

const STEP_TEXT: Record<PairStep, string> = {
  lookup: 'Finding the device…',
  contacting: 'Contacting the device…',
  verifying: 'Checking the code and exchanging keys…',
  saving: 'Saving the device key…',
};

export class App {
  private devices: PairedDevice[] = [];
  private readonly presence = new Map<string, boolean>();
  private readonly cameras = new Map<string, Cameras>();
  private live: { view: LiveView; deviceId: string; camera: string } | undefined;
  private pairing: PairingRun | undefined;
  private lastError: HearthHook['lastError'];
  private readonly main: HTMLElement;
  private readonly netDot: HTMLElement;
  private route: Route = { kind: 'home' };
  /** A QR link read at startup, held in memory only (removed from the address bar at once). */
  private pendingLink: string | undefined;
  /** The sealed channels to paired devices (everything but pairing goes through them). */
  private readonly channels: ViewerChannels;
  /** What the live view signals through: the sealed channel over the rendezvous. */
  private readonly sealed: SignalingPort;

  constructor(
    root: HTMLElement,
    private readonly db: Db,
    private readonly me: ViewerIdentity,
    private readonly rv: RendezvousClient,
    private readonly env: CryptoEnv,
  ) {
    this.channels = new ViewerChannels({
      signer: me.signer,
      env,
      pinned: (d) => {
        const dev = this.devices.find((x) => x.deviceId === d);
        return dev ? decodeId('deviceKey', dev.deviceKey) : undefined;
      },
      route: (to, m) => rv.sendTo(to, m) !== undefined,
      // TEST ONLY (the control of the server-dump test): set by a test's init script.
      ...((globalThis as { __hearthUnsealedForTests?: unknown }).__hearthUnsealedForTests === true
        ? { unsealedForTests: true }
        : {}),
    });
    const channels = this.channels;
    this.sealed = {
      get ready() {
        return rv.ready;
      },
      get ice() {
        return rv.ice;
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
      pairedDevices: () => self.devices.map((d) => ({ ...d })),
      viewerKey: this.me.keyText,
      get rendezvous() {
        return self.rv.status;
      },
    };
  }

  async start(): Promise<void> {
    this.devices = await listDevices(this.db);
    this.rv.on('status', (s) => {
      this.netDot.className = `net net-${s === 'ready' ? 'up' : 'down'}`;
      this.netDot.title = `server: ${s === 'ready' ? 'connected' : s}`;
      // The channels outlive the WebSocket: replies in flight across a reconnect still open.
      if (s === 'down') this.live?.view.onSignalingDown();
    });
    this.rv.on('ready', () => {
      this.rv.watch(this.devices.map((d) => d.deviceId));
      for (const d of this.devices) this.channels.send(d.deviceId, camerasRequest());
      this.live?.view.onSignalingReady();
    });
    this.rv.on('presence', (f) => {
      const was = this.presence.get(f.d);
      this.presence.set(f.d, f.online);
      if (was === true && !f.online) this.channels.reset(f.d); // it may come back restarted, keyless
      if (this.live?.deviceId === f.d) this.live.view.onPresence(f.online);
      if (f.online && was !== true && this.isPaired(f.d)) this.channels.send(f.d, camerasRequest());
      if (this.route.kind === 'home') this.render();
    });
    this.rv.on('recv', (f) => this.onRecv(f.from, f.m));
    this.rv.on('pair/found', (f) => this.pairing?.onFound(f));
    this.rv.on('error', (f) => {
      if (this.pairing?.onServerError(f)) return;
      this.lastError = { code: f.code, message: 'server error' };
    });
    addEventListener('online', () => this.rv.nudge());
    addEventListener('hashchange', () => this.navigate());
    addEventListener('popstate', () => this.navigate());
    this.navigate();
    this.rv.start();
  }

  private isPaired(deviceId: string): boolean {
    return this.devices.some((d) => d.deviceId === deviceId);
  }

  private onRecv(from: string, raw: unknown): void {
    void this.channels.receive(from, raw).then((inc) => {
      if (inc.kind === 'pair') {
        this.pairing?.onMessage(from, inc.m);
        return;
      }
      if (!this.isPaired(from)) return; // only devices we pinned may talk to us
      if (inc.kind === 'rejected') {
        if (inc.attack && this.live?.deviceId === from)
          this.live.view.onChannelAttack(inc.error.code, 'the sealed channel to the device failed a check');
        if (inc.attack) this.lastError = { code: inc.error.code, message: 'possible attack' };
        return;
      }
      if (inc.kind === 'handled') {
        // The device lost our channel (it restarted): ask again on a new one.
        if (inc.event === 'reset') this.channels.send(from, camerasRequest());
        return;
      }
      if (inc.kind !== 'message') return;
      const m = inc.m;
      if (m.t === 'cameras') {
        this.cameras.set(from, { list: m.list });
        if (this.route.kind === 'home') this.render();
      } else if (m.t === 'cameras/refused') {
        this.cameras.set(from, { refused: m.code });
        if (this.route.kind === 'home') this.render();
      } else if (this.live && this.live.deviceId === from) {
        void this.live.view.onMessage(m);
      }
    });
  }

  // ------------------------------------------------------------------ routing

  private navigate(): void {
    const route = parseRoute(location);
    if (route.kind === 'pair-link') {
      // Keep the setup secret out of the address bar, history and any later Referer.
      this.pendingLink = route.link;
      history.replaceState(null, '', '/#/pair');
      this.route = { kind: 'pair' };
    } else {
      this.route = route;
    }
    if (this.route.kind !== 'live' && this.live) {
      this.live.view.stop();
      this.live = undefined;
      document.documentElement.classList.remove('alarm');
    }
    if (this.route.kind === 'home' && this.devices.length === 0) this.route = { kind: 'pair' };
    this.render();
    if (this.pendingLink && this.route.kind === 'pair') {
      const link = this.pendingLink;
      this.pendingLink = undefined;
      void this.runPairing({ kind: 'link', link }, '');
    }
  }

  private go(hash: string): void {
    if (location.hash === hash) this.navigate();
    else location.hash = hash;
  }

  private render(): void {
    switch (this.route.kind) {
      case 'pair':
        if (!this.main.querySelector('#pair-form')) replace(this.main, this.pairScreen());
        return;
      case 'live':
        this.renderLive(this.route.deviceId, this.route.camera);
        return;
      default:
        replace(this.main, this.homeScreen());
    }
  }

  // ------------------------------------------------------------------ pairing

  private pairStatus = h('div', {
    id: 'pair-status',
    class: 'pair-status',
    role: 'status',
    'aria-live': 'polite',
  });

  private pairScreen(): HTMLElement {
    const code = h('input', {
      id: 'pair-code',
      name: 'code',
      autocomplete: 'off',
      autocapitalize: 'characters',
      spellcheck: 'false',
      inputmode: 'text',
      placeholder: 'ABCD-EFGH-JKMNP',
      maxlength: 20,
      required: true,
      'aria-describedby': 'pair-help',
    });
    const label = h('input', {
      id: 'pair-label',
      name: 'label',
      autocomplete: 'off',
      maxlength: 64,
      placeholder: 'e.g. Nursery',
    });
    const button = h('button', { type: 'submit', class: 'primary', id: 'pair-submit' }, 'Pair');
    const form = h(
      'form',
      {
        id: 'pair-form',
        class: 'card',
        novalidate: true,
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          if (this.pairing) return;
          const normal = normalizeManualCode(code.value);
          if (!normal) return this.showPairStatus('error', pairFailureText('bad-input'));
          code.value = normal;
          void this.runPairing({ kind: 'code', code: normal }, label.value.trim());
        },
      },
      h('label', { for: 'pair-code' }, 'Pairing code'),
      code,
      h(
        'p',
        { id: 'pair-help', class: 'help' },
        'The 13-character code printed next to the QR code on the device or in its console.',
      ),
      h(
        'label',
        { for: 'pair-label' },
        'Name for this device ',
        h('span', { class: 'muted' }, '(stays on this phone)'),
      ),
      label,
      button,
    );
    return h(
      'section',
      { class: 'screen pair' },
      h('h1', {}, 'Pair a camera'),
      h(
        'p',
        { class: 'lead' },
        'Scan the QR code on the device with your phone’s camera, or type its code below.',
      ),
      form,
      this.pairStatus,
      this.devices.length ? h('p', {}, h('a', { href: '#/' }, '← Your cameras')) : null,
      h(
        'p',
        { class: 'fine' },
        'Your key: ',
        h('code', {}, shortId(this.me.keyText)),
        ' — made on this device, it never leaves it.',
      ),
    );
  }

  private showPairStatus(kind: 'progress' | 'error' | 'ok', text: string): void {
    this.pairStatus.className = `pair-status ${kind}`;
    this.pairStatus.dataset.kind = kind;
    replace(
      this.pairStatus,
      kind === 'progress' ? h('span', { class: 'spinner', 'aria-hidden': 'true' }) : null,
      text,
    );
  }

  private async runPairing(input: PairInput, label: string): Promise<void> {
    if (this.route.kind !== 'pair') this.go('#/pair');
    if (!this.rv.ready) this.showPairStatus('progress', 'Connecting to the server…');
    const submit = this.main.querySelector<HTMLButtonElement>('#pair-submit');
    if (submit) submit.disabled = true;
    try {
      await this.waitReady(20_000);
      const run = startPairing({
        input,
        signaling: this.rv,
        signer: this.me.signer,
        env: this.env,
        onStep: (s) => this.showPairStatus('progress', STEP_TEXT[s]),
      });
      this.pairing = run;
      const r = await run.result;
      this.showPairStatus('progress', STEP_TEXT.saving);
      const dev: PairedDevice = {
        deviceId: parseId('deviceId', r.deviceId),
        deviceKey: r.deviceKey,
        role: r.role,
        server: location.origin,
        label: label || `Camera ${shortId(r.deviceId).slice(5, 9)}`,
        pairedAt: this.env.now(),
      };
      await saveDevice(this.db, dev); // re-checks that the key hashes to the device ID
      this.devices = await listDevices(this.db);
      this.rv.watch([dev.deviceId]);
      this.channels.send(dev.deviceId, camerasRequest());
      this.showPairStatus('ok', `Paired as ${r.role}.`);
      this.go('#/');
    } catch (err) {
      const f =
        err instanceof PairingFailure
          ? err
          : new PairingFailure('failed', { code: (err as { code?: string }).code });
      this.lastError = { code: f.code ?? f.reason, message: f.reason };
      this.showPairStatus('error', pairFailureText(f.reason, f.attemptsLeft, f.code));
    } finally {
      this.pairing = undefined;
      if (submit) submit.disabled = false;
    }
  }

  private waitReady(ms: number): Promise<void> {
    if (this.rv.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        off();
        reject(new PairingFailure('no-server'));
      }, ms);
      const off = this.rv.on('ready', () => {
        clearTimeout(t);
        off();
        resolve();
      });
    });
  }

  // ------------------------------------------------------------------ device list

  private homeScreen(): HTMLElement {
    const list = h('ul', { class: 'devices', id: 'devices' });
    for (const d of this.devices) list.append(this.deviceCard(d));
    return h(
      'section',
      { class: 'screen home' },
      h('h1', {}, 'Your cameras'),
      list,
      h('p', {}, h('a', { class: 'button', href: '#/pair', id: 'pair-another' }, '+ Pair a camera')),
    );
  }

  private deviceCard(d: PairedDevice): HTMLElement {
    const online = this.presence.get(d.deviceId);
    const cams = this.cameras.get(d.deviceId);
    const presence = online === undefined ? 'unknown' : online ? 'online' : 'offline';
    const camList = h('ul', { class: 'cams' });
    if (cams && 'list' in cams) {
      if (cams.list.length === 0) camList.append(h('li', { class: 'muted' }, 'No cameras configured.'));
      for (const c of cams.list) {
        camList.append(
          h(
            'li',
            {},
            h(
              'a',
              {
                class: `cam ${c.online ? 'on' : 'off'}`,
                href: liveHref(d.deviceId, c.name),
                'data-camera': c.name,
              },
              h('span', { class: 'cam-name' }, c.name),
              h('span', { class: 'cam-state' }, c.online ? 'live' : 'no signal'),
            ),
          ),
        );
      }
    } else if (cams && 'refused' in cams) {
      camList.append(h('li', { class: 'refused' }, `Access refused (${cams.refused})`));
    } else {
      camList.append(h('li', { class: 'muted' }, online === false ? 'Device offline.' : 'Loading cameras…'));
    }
    return h(
      'li',
      { class: 'card device', 'data-device': d.deviceId, 'data-presence': presence },
      h(
        'div',
        { class: 'device-head' },
        h('span', { class: `dot ${presence}`, title: presence, 'aria-label': presence }),
        h('strong', { class: 'device-label' }, d.label),
        h('span', { class: 'role' }, d.role),
      ),
      h('div', { class: 'device-id muted' }, h('code', {}, shortId(d.deviceId)), ` · ${presence}`),
      camList,
      h(
        'details',
        { class: 'manage' },
        h('summary', {}, 'Manage'),
        h(
          'button',
          {
            type: 'button',
            onclick: () => {
              const name = prompt('Name for this device (stays on this phone)', d.label);
              if (name?.trim()) void renameDevice(this.db, d.deviceId, name.trim()).then(() => this.reload());
            },
          },
          'Rename',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            onclick: () => {
              if (confirm(`Forget ${d.label} on this phone? You will need to pair again.`))
                void forgetDevice(this.db, d.deviceId).then(() => this.reload());
            },
          },
          'Forget',
        ),
      ),
    );
  }

  private async reload(): Promise<void> {
    this.devices = await listDevices(this.db);
    this.navigate();
  }

  // ------------------------------------------------------------------ live view

  private renderLive(deviceId: string, camera: string): void {
    if (
      this.live &&
      this.live.deviceId === deviceId &&
      this.live.camera === camera &&
      this.main.querySelector('#status')
    )
      return;
    this.live?.view.stop();
    this.live = undefined;
    const dev = this.devices.find((d) => d.deviceId === deviceId);
    if (!dev) {
      replace(
        this.main,
        h(
          'section',
          { class: 'screen' },
          h('p', {}, 'This device is not paired on this phone. '),
          h('a', { href: '#/pair' }, 'Pair it'),
        ),
      );
      return;
    }
    const video = h('video', {
      id: 'video',
      muted: true,
      playsinline: true,
      autoplay: true,
      'aria-label': `${camera} live video`,
    });
    video.muted = true; // the attribute alone does not mute in every browser
    const status = h('div', {
      id: 'status',
      class: 'status',
      role: 'status',
      'aria-live': 'polite',
      'data-state': 'idle',
    });
    const hint = h('p', { id: 'status-hint', class: 'hint' });
    const retry = h(
      'button',
      { type: 'button', id: 'retry', class: 'primary', hidden: true, onclick: () => view.start() },
      'Try again',
    );
    // The sealed still is drawn on a canvas (createImageBitmap of the bytes: no URL, so the strict
    // `default-src 'self'` CSP stays as it is) and hidden once the video presents a frame.
    const still = h('canvas', { class: 'still', hidden: true, 'aria-hidden': 'true' });
    let playing = false;
    const hideStill = () => {
      playing = true;
      still.hidden = true;
    };
    video.addEventListener('playing', hideStill);
    const stage = h('div', { class: 'stage' }, video, still);
    const paint = (s: ViewState) => {
      status.dataset.state = s.name;
      if (s.code) status.dataset.code = s.code;
      else delete status.dataset.code;
      status.textContent = statusText(s);
      hint.textContent = viewStateHint(s);
      stage.dataset.state = s.name;
      retry.hidden = !needsUser(s);
      document.documentElement.classList.toggle('alarm', s.name === 'possible attack');
    };
    const view = new LiveView({
      deviceId,
      pinnedDeviceKey: pinnedKeyBytes(dev),
      camera,
      signer: this.me.signer,
      env: this.env,
      signaling: this.sealed,
      attach: (stream) => {
        if (video.srcObject !== stream) video.srcObject = stream;
        if (stream) void video.play().catch(() => undefined);
        else playing = false;
      },
      showStill: (jpeg) => {
        if (!jpeg) {
          still.hidden = true;
          return;
        }
        if (playing) return;
        void createImageBitmap(new Blob([jpeg as BlobPart], { type: 'image/jpeg' }))
          .then((bmp) => {
            if (!playing) {
              still.width = bmp.width;
              still.height = bmp.height;
              still.getContext('2d')?.drawImage(bmp, 0, 0);
              still.hidden = false;
            }
            bmp.close();
          })
          .catch(() => undefined); // not a decodable image: nothing shown
      },
      onState: paint,
    });
    this.live = { view, deviceId, camera };
    const live = this.live;
    if ('requestVideoFrameCallback' in video) {
      const tick = () => {
        if (this.live !== live) return;
        hideStill();
        view.countFrame();
        video.requestVideoFrameCallback(tick);
      };
      video.requestVideoFrameCallback(tick);
    }
    replace(
      this.main,
      h(
        'section',
        { class: 'screen live' },
        h(
          'div',
          { class: 'live-head' },
          h('a', { href: '#/', class: 'back', 'aria-label': 'Back to cameras' }, '←'),
          h('h1', {}, `${dev.label} · ${camera}`),
        ),
        stage,
        status,
        hint,
        retry,
      ),
    );
    paint(view.state);
    const online = this.presence.get(deviceId);
    if (online !== undefined) view.onPresence(online);
    view.start();
  }
}
