/**
 * The pairing screen: the manual-code form, the progress and result line, and the pairing run
 * itself (by code typed here, or by a QR link the shell read at startup). A paired device is saved
 * to the directory (its key re-checked against its ID) before the shell is told.
 */
import { type CryptoEnv, deviceFingerprint, parseId, shortId } from '@hearth/protocol';
import { normalizeManualCode } from '../core/links.js';
import type { RendezvousClient } from '../net/rendezvous.js';
import { defaultPairingAdapter } from '../pairing/adapter.js';
import {
  type PairInput,
  PairingFailure,
  type PairingRun,
  type PairStep,
  startPairing,
} from '../pairing/flow.js';
import type { PairedDevice } from '../store/devices.js';
import type { DeviceDirectory } from '../store/directory.js';
import type { ViewerIdentity } from '../store/keys.js';
import type { AppError } from './alarm.js';
import { h, replace } from './dom.js';
import { pairFailureText } from './text.js';

const STEP_TEXT: Record<PairStep, string> = {
  lookup: 'Finding the device…',
  contacting: 'Contacting the device…',
  verifying: 'Checking the code and exchanging keys…',
  saving: 'Saving the device key…',
};

export interface PairScreenDeps {
  readonly rv: RendezvousClient;
  readonly me: ViewerIdentity;
  readonly env: CryptoEnv;
  readonly dir: DeviceDirectory;
  /** Whether the shell shows the pairing route now. */
  onPairRoute(): boolean;
  go(hash: string): void;
  /** A device was paired and saved (the directory already lists it); may name the screen to go to next. */
  paired(dev: PairedDevice): string | undefined;
  failed(e: AppError): void;
}

export class PairScreen {
  private readonly status = h('div', {
    id: 'pair-status',
    class: 'pair-status',
    role: 'status',
    'aria-live': 'polite',
  });
  private run: PairingRun | undefined;

  constructor(
    private readonly main: HTMLElement,
    private readonly deps: PairScreenDeps,
  ) {}

  /** Show the screen in `main`, unless its form is there already (a status line stays as it is). */
  render(): void {
    if (!this.main.querySelector('#pair-form')) replace(this.main, this.screen());
  }

  // Rendezvous traffic for a pairing in progress (ignored when none is).
  onFound(f: { tag: string; d: string | null }): void {
    this.run?.onFound(f);
  }

  onMessage(from: string, m: { t: string; [k: string]: unknown }): void {
    this.run?.onMessage(from, m);
  }

  /** True if the error frame belonged to the pairing in progress. */
  onServerError(f: { code: string; ref?: string | undefined }): boolean {
    return this.run?.onServerError(f) ?? false;
  }

  private screen(): HTMLElement {
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
          if (this.run) return;
          const normal = normalizeManualCode(code.value);
          if (!normal) return this.show('error', pairFailureText('bad-input'));
          code.value = normal;
          void this.pair({ kind: 'code', code: normal }, label.value.trim());
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
      this.status,
      this.deps.dir.size ? h('p', {}, h('a', { href: '#/' }, '← Your cameras')) : null,
      h(
        'p',
        { class: 'help' },
        'Lost your phone? ',
        h('a', { href: '#/recover', id: 'recover-link' }, 'Use your recovery key'),
      ),
      h(
        'p',
        { class: 'fine' },
        'Your key: ',
        h('code', {}, shortId(this.deps.me.keyText)),
        ' — made on this device, it never leaves it.',
      ),
    );
  }

  private show(kind: 'progress' | 'error' | 'ok', text: string): void {
    this.status.className = `pair-status ${kind}`;
    this.status.dataset.kind = kind;
    replace(
      this.status,
      kind === 'progress' ? h('span', { class: 'spinner', 'aria-hidden': 'true' }) : null,
      text,
    );
  }

  /**
   * A pairing link was opened: ask first (review R8). Anyone can send a link, and opening one
   * must not pair this browser with a device the user does not own; so the screen shows the
   * device's fingerprint, which its console prints beside its QR code, and pairs only on "Pair".
   */
  confirmLink(link: string): void {
    this.render();
    let deviceId: string;
    try {
      deviceId = defaultPairingAdapter.parseLink(link).deviceId;
    } catch {
      this.show('error', pairFailureText('bad-input'));
      return;
    }
    const label = h('input', { id: 'pair-link-label', maxlength: 64, placeholder: 'e.g. Nursery' });
    const card: HTMLElement = h(
      'div',
      {
        id: 'pair-link-confirm',
        class: 'card confirm',
        role: 'alertdialog',
        'aria-labelledby': 'pair-link-title',
      },
      h('h2', { id: 'pair-link-title' }, 'Pair with this camera?'),
      h(
        'p',
        {},
        'A link asks this browser to pair with a camera. Pair only if the words below are the ones its console shows beside its QR code:',
      ),
      h('p', { class: 'fingerprint', id: 'pair-link-fingerprint' }, deviceFingerprint(deviceId)),
      h('label', { for: 'pair-link-label' }, 'Name for this device'),
      label,
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            id: 'pair-link-yes',
            onclick: () => {
              card.remove();
              void this.pair({ kind: 'link', link }, label.value.trim());
            },
          },
          'Pair',
        ),
        h(
          'button',
          {
            type: 'button',
            id: 'pair-link-no',
            onclick: () => {
              card.remove();
              this.show('ok', 'Not paired.');
            },
          },
          'Cancel',
        ),
      ),
    );
    this.main.querySelector('#pair-link-confirm')?.remove();
    this.main.querySelector('section.screen.pair')?.prepend(card);
  }

  /** Pair with a device, by a typed code or a QR link; `label` is the user's name for it (or ''). */
  async pair(input: PairInput, label: string): Promise<void> {
    const { rv, me, env, dir } = this.deps;
    if (!this.deps.onPairRoute()) this.deps.go('#/pair');
    if (!rv.ready) this.show('progress', 'Connecting to the server…');
    const submit = this.main.querySelector<HTMLButtonElement>('#pair-submit');
    if (submit) submit.disabled = true;
    try {
      await this.waitReady(20_000);
      const run = startPairing({
        input,
        signaling: rv,
        signer: me.signer,
        env,
        onStep: (s) => this.show('progress', STEP_TEXT[s]),
      });
      this.run = run;
      const r = await run.result;
      this.show('progress', STEP_TEXT.saving);
      const dev: PairedDevice = {
        deviceId: parseId('deviceId', r.deviceId),
        deviceKey: r.deviceKey,
        role: r.role,
        server: location.origin,
        label: label || `Camera ${shortId(r.deviceId).slice(5, 9)}`,
        pairedAt: env.now(),
      };
      await dir.add(dev); // re-checks that the key hashes to the device ID
      const next = this.deps.paired(dev);
      this.show('ok', `Paired as ${r.role}.`);
      this.deps.go(next ?? '#/');
    } catch (err) {
      const f =
        err instanceof PairingFailure
          ? err
          : new PairingFailure('failed', { code: (err as { code?: string }).code });
      this.deps.failed({ code: f.code ?? f.reason, message: f.reason });
      this.show('error', pairFailureText(f.reason, f.attemptsLeft, f.code));
    } finally {
      this.run = undefined;
      if (submit) submit.disabled = false;
    }
  }

  private waitReady(ms: number): Promise<void> {
    const rv = this.deps.rv;
    if (rv.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        off();
        reject(new PairingFailure('no-server'));
      }, ms);
      const off = rv.on('ready', () => {
        clearTimeout(t);
        off();
        resolve();
      });
    });
  }
}
