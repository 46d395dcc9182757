/**
 * The recovery key, shown once right after pairing as owner (a card on the home screen, above the
 * cameras, until "Done" or "Skip"): a fresh Ed25519 key whose public half goes into the device's
 * ACL (`acl/update {recovery}`) and whose private half is shown for printing or writing down, then
 * dropped. It can only add or remove owners, so a household that lost every owner phone can get
 * back in; it cannot watch anything. This browser keeps no copy, and the card is not shown again.
 */
import { encodeId, WebCryptoSigner, wipe } from '@hearth/protocol';
import { recoveryUpdate } from '../core/members.js';
import { recoveryText } from '../core/recovery.js';
import { HouseholdError } from '../net/household.js';
import type { PairedDevice } from '../store/devices.js';
import { h, replace } from './dom.js';
import { type HouseholdContext, sendUpdate } from './members-screen.js';
import { householdErrorText } from './text.js';

export class RecoveryCard {
  /** The card (kept across home-screen renders). */
  readonly el: HTMLElement = h('div', { class: 'card recovery', id: 'recovery' });
  private readonly key = h('pre', { class: 'recovery-key', id: 'recovery-key' }, 'Making your recovery key…');
  private readonly status = h('p', { class: 'pair-status', id: 'recovery-status', role: 'status' });

  constructor(
    private readonly ctx: HouseholdContext,
    private readonly dev: PairedDevice,
    private readonly done: () => void,
  ) {
    void this.start();
  }

  private async start(): Promise<void> {
    let pub: Uint8Array;
    try {
      const key = await WebCryptoSigner.generate(true);
      const seed = await key.exportSeed();
      this.key.textContent = await recoveryText(seed);
      wipe(seed);
      pub = key.publicKey;
    } catch {
      replace(this.el, h('p', {}, 'This browser cannot make a recovery key.'));
      return;
    }
    const ok = h('input', { class: 'tick', type: 'checkbox', id: 'recovery-ok' });
    const save = h(
      'button',
      { type: 'button', class: 'primary', id: 'recovery-save', disabled: true },
      'Done',
    );
    ok.addEventListener('change', () => {
      save.disabled = !ok.checked;
    });
    save.addEventListener('click', () => void this.save(encodeId('userKey', pub), save));
    replace(
      this.el,
      h('h2', {}, `Recovery key for ${this.dev.label}`),
      h(
        'p',
        {},
        'If you lose this phone (and every other owner phone), this key makes you owner again. It cannot watch anything.',
      ),
      this.key,
      h(
        'p',
        { class: 'help' },
        'Print it or write it down and keep it safe. It is shown only now: this phone keeps no copy.',
      ),
      h('label', { class: 'check' }, ok, ' I have printed or written it down'),
      h(
        'div',
        { class: 'btns' },
        save,
        h('button', { type: 'button', onclick: () => print() }, 'Print'),
        h('button', { type: 'button', id: 'recovery-skip', onclick: () => this.finish() }, 'Skip'),
      ),
      this.status,
    );
  }

  private async save(recovery: string, btn: HTMLButtonElement): Promise<void> {
    btn.disabled = true;
    this.status.textContent = 'Saving the recovery key on the device…';
    try {
      const acl = await this.ctx.api.getAcl(this.dev.deviceId);
      await sendUpdate(this.ctx, this.dev.deviceId, recoveryUpdate(acl, recovery));
      this.finish();
    } catch (e) {
      this.status.textContent = householdErrorText(e instanceof HouseholdError ? e.code : 'E_INTERNAL');
      btn.disabled = false;
    }
  }

  private finish(): void {
    this.key.textContent = '';
    this.done();
  }
}
