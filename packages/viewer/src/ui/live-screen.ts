/**
 * The live view screen of one camera: the video, the sealed still shown until the first frame, the
 * status line with its hint and the retry button, all painted from the LiveView's state (an attack
 * state also raises the page-wide alarm). The session logic itself is live/live-view.ts.
 */
import type { CryptoEnv } from '@hearth/protocol';
import { needsUser, statusText, type ViewState } from '../core/view-state.js';
import { LiveView, type SignalingPort } from '../live/live-view.js';
import { type PairedDevice, pinnedKeyBytes } from '../store/devices.js';
import type { ViewerIdentity } from '../store/keys.js';
import { setAlarm } from './alarm.js';
import { h, replace } from './dom.js';
import { viewStateHint } from './text.js';

export interface LiveScreenDeps {
  readonly me: ViewerIdentity;
  readonly env: CryptoEnv;
  /** The sealed channel over the rendezvous. */
  readonly signaling: SignalingPort;
}

export class LiveScreen {
  readonly view: LiveView;
  private stopped = false;

  /**
   * Show the live view of `camera` on `dev` in `main` and start it. `online` is the device's
   * presence as known now (undefined: not known yet).
   */
  constructor(
    main: HTMLElement,
    readonly dev: PairedDevice,
    readonly camera: string,
    online: boolean | undefined,
    deps: LiveScreenDeps,
  ) {
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
      setAlarm(s.name === 'possible attack');
    };
    const view = new LiveView({
      deviceId: dev.deviceId,
      pinnedDeviceKey: pinnedKeyBytes(dev),
      camera,
      signer: deps.me.signer,
      env: deps.env,
      signaling: deps.signaling,
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
    this.view = view;
    if ('requestVideoFrameCallback' in video) {
      const tick = () => {
        if (this.stopped) return;
        hideStill();
        view.countFrame();
        video.requestVideoFrameCallback(tick);
      };
      video.requestVideoFrameCallback(tick);
    }
    replace(
      main,
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
    if (online !== undefined) view.onPresence(online);
    view.start();
  }

  get deviceId(): string {
    return this.dev.deviceId;
  }

  /** End the session; the screen's frame counter stops too. */
  stop(): void {
    this.stopped = true;
    this.view.stop();
  }
}
