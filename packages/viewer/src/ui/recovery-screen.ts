/**
 * The recovery key, shown once right after pairing as owner (a card on the home screen, above the
 * cameras, until "Done" or "Skip"): a fresh Ed25519 key whose public half goes into the device's
 * ACL (`acl/update {recovery}`) and whose private half is shown for printing or writing down, then
 * dropped. It can only add or remove owners, so a household that lost every owner phone can get
 * back in; it cannot watch anything. This browser keeps no copy, and the card is not shown again.
 */
import {
  decodeId,
  deviceIdFromKey,
  encodeId,
  signRecoveryProof,
  WebCryptoSigner,
  wipe,
} from '@hearth/protocol';
import { recoveryUpdate } from '../core/members.js';
import { parseRecoveryText, recoveryText } from '../core/recovery.js';
import { HouseholdError, signAclUpdateV2 } from '../net/household.js';
import type { PairedDevice } from '../store/devices.js';
import type { DeviceDirectory } from '../store/directory.js';
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
      this.key.textContent = await recoveryText(seed, decodeId('deviceKey', this.dev.deviceKey));
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

/**
 * "Lost your phone?": a new phone (its own key, in no ACL) types the printed recovery key. The text
 * carries the device's public key, which this phone pins; the recovery key proves itself to the
 * device (`acl/get {rp}`, bound to this phone's key) to learn the ACL's version and owners, then
 * signs the one update it may: this phone becomes the only owner, every other owner key goes. The
 * phone then offers a new recovery key (the typed one stays valid until it is replaced).
 */
export class RecoverScreen {
  private readonly status = h('p', { class: 'pair-status', id: 'recover-status', role: 'status' });
  private readonly text = h('textarea', {
    id: 'recover-key',
    rows: 4,
    spellcheck: false,
    autocomplete: 'off',
    'aria-label': 'Recovery key',
    placeholder: 'HRK2-…',
  }) as HTMLTextAreaElement;
  private busy = false;

  constructor(
    private readonly main: HTMLElement,
    private readonly ctx: HouseholdContext,
    private readonly dir: DeviceDirectory,
    /** This phone is the device's owner now (pin kept; show it as paired). */
    private readonly recovered: (dev: PairedDevice) => void,
    /** Watch the device's presence (before the first message to it). */
    private readonly watch: (dev: PairedDevice) => void,
  ) {}

  render(): void {
    const form = h(
      'form',
      {
        class: 'card',
        id: 'recover-form',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          void this.recover(this.text.value);
        },
      },
      h('label', { for: 'recover-key' }, 'Type the recovery key you printed when you paired'),
      this.text,
      h(
        'div',
        { class: 'btns' },
        h('button', { type: 'submit', class: 'primary', id: 'recover-submit' }, 'Become owner'),
      ),
    );
    replace(
      this.main,
      h(
        'section',
        { class: 'screen recover' },
        h('h1', {}, 'Lost your phone?'),
        h(
          'p',
          { class: 'lead' },
          'Your recovery key makes this phone the owner of the device again. Every other owner phone loses owner rights; members keep theirs.',
        ),
        form,
        this.status,
        h('p', {}, h('a', { href: '#/' }, '← Your cameras')),
      ),
    );
  }

  private say(kind: 'progress' | 'error' | 'ok', text: string): void {
    this.status.className = `pair-status ${kind}`;
    this.status.textContent = text;
  }

  private async recover(text: string): Promise<void> {
    if (this.busy) return;
    const k = await parseRecoveryText(text);
    if (!k) {
      this.say('error', 'That is not a recovery key: check it for typos (it starts with HRK2).');
      return;
    }
    this.busy = true;
    const { env, me, api } = this.ctx;
    const deviceId = deviceIdFromKey(k.deviceKey);
    const had = this.dir.find(deviceId);
    const dev: PairedDevice = {
      deviceId,
      deviceKey: encodeId('deviceKey', k.deviceKey),
      role: had?.role ?? 'recovering',
      server: this.ctx.origin,
      label: had?.label ?? 'Recovered camera',
      pairedAt: had?.pairedAt ?? env.now(),
    };
    let rk: WebCryptoSigner | undefined;
    try {
      rk = await WebCryptoSigner.fromSeed(k.seed);
      wipe(k.seed);
      this.text.value = '';
      if (!had) await this.dir.add(dev); // pins the key (re-checked against the device ID)
      this.watch(dev);
      this.say('progress', 'Asking the device…');
      const rp = await signRecoveryProof(rk, { d: deviceId, vk: me.keyText }, env);
      const acl = await api.getAcl(deviceId, rp);
      const others = acl.owners.filter((o) => o !== me.keyText);
      const body = {
        d: deviceId,
        ver: acl.ver + 1,
        add: [],
        revoke: [],
        owners: { add: [me.keyText], ...(others.length ? { remove: others } : {}) },
      };
      await api.updateAcl(deviceId, await signAclUpdateV2(rk, body, env));
      const owned = { ...dev, role: 'owner' };
      await this.dir.add(owned);
      this.say('ok', 'This phone is the owner again. Make a new recovery key on Your cameras.');
      this.recovered(owned);
    } catch (e) {
      if (!had) await this.dir.forget(deviceId).catch(() => undefined);
      const code = e instanceof HouseholdError ? e.code : 'E_INTERNAL';
      this.say(
        'error',
        code === 'E_WRONG_SIGNER' || code === 'E_BAD_SIGNATURE' || code === 'E_BAD_BINDING'
          ? 'The device does not accept this recovery key (it may have been replaced).'
          : householdErrorText(code),
      );
    } finally {
      rk = undefined;
      this.busy = false;
    }
  }
}
