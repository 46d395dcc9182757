/**
 * Invites. The owner side: pick a role template (Family member, Babysitter, Guest) and cameras,
 * sign the invite, register it on the device (`invite/create`), then show the one-time link and its
 * QR code. The invitee side (`#/invite/<payload>`): show the device's fingerprint, pin the device
 * key from the link, send `invite/redeem`, and wait for an owner's approval. Redeeming grants
 * nothing by itself: the device lets the key in only once an owner signs a grant for it.
 */
import {
  type CryptoEnv,
  decodeId,
  deviceFingerprint,
  type InviteLink,
  inviteRedeemMessage,
  makeInvite,
  parseId,
} from '@hearth/protocol';
import { parseInviteFragment } from '../core/invite-link.js';
import { type PresetId, presetTemplate, ROLE_PRESETS } from '../core/members.js';
import { encodeQr } from '../core/qr.js';
import { type HouseholdApi, HouseholdError } from '../net/household.js';
import type { PairedDevice } from '../store/devices.js';
import type { DeviceDirectory } from '../store/directory.js';
import type { ViewerIdentity } from '../store/keys.js';
import { h, replace } from './dom.js';
import { householdErrorText } from './text.js';

/** How long an invite link stays usable: 24 hours (the link, not the grant it leads to). */
export const INVITE_LINK_HOURS = 24;

/** A canvas with `text` as a QR code (level M, 4-module quiet zone). */
export function qrCanvas(text: string, px = 6): HTMLCanvasElement {
  const q = encodeQr(text, 'M');
  const n = q.size + 8;
  const c = h('canvas', {
    class: 'qr',
    width: n * px,
    height: n * px,
    role: 'img',
    'aria-label': 'QR code of the link',
  });
  const g = c.getContext('2d');
  if (g) {
    g.fillStyle = '#fff';
    g.fillRect(0, 0, n * px, n * px);
    g.fillStyle = '#000';
    for (let y = 0; y < q.size; y++)
      for (let x = 0; x < q.size; x++) if (q.get(x, y)) g.fillRect((x + 4) * px, (y + 4) * px, px, px);
  }
  return c;
}

export interface InviteFormDeps {
  api: HouseholdApi;
  me: ViewerIdentity;
  env: CryptoEnv;
  origin: string;
  dev: PairedDevice;
  cameras: readonly string[];
  /** An invite was registered on the device. */
  made(id: string): void;
}

/** The owner's make-an-invite form; after "Make link", the link and its QR code replace it. */
export function inviteForm(o: InviteFormDeps): HTMLElement {
  const status = h('p', { class: 'pair-status', id: 'invite-status', role: 'status', 'aria-live': 'polite' });
  let preset: PresetId = 'family';
  const presets = h(
    'fieldset',
    { class: 'presets' },
    h('legend', {}, 'What may they do?'),
    ...ROLE_PRESETS.map((p) =>
      h(
        'label',
        { class: 'preset' },
        h('input', {
          class: 'tick',
          type: 'radio',
          name: 'preset',
          value: p.id,
          checked: p.id === preset,
          onchange: () => {
            preset = p.id;
          },
        }),
        h('strong', {}, p.name),
        h('span', { class: 'muted' }, p.summary),
      ),
    ),
  );
  const camBoxes = o.cameras.map((c) =>
    h('input', { class: 'tick', type: 'checkbox', value: c, checked: true }),
  );
  const cams = h(
    'fieldset',
    { class: 'cams-pick' },
    h('legend', {}, 'Which cameras?'),
    ...camBoxes.map((b) => h('label', {}, b, ` ${b.value}`)),
  );
  const label = h('input', { id: 'invite-label', maxlength: 64, placeholder: 'e.g. Grandma' });
  const card: HTMLElement = h(
    'form',
    {
      class: 'card invite-form',
      id: 'invite-form',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const chosen = camBoxes.filter((b) => b.checked).map((b) => b.value);
        if (camBoxes.length && !chosen.length) {
          status.textContent = 'Pick at least one camera.';
          return;
        }
        const all = chosen.length === camBoxes.length;
        void make(presetTemplate(preset, all ? undefined : chosen), label.value.trim());
      },
    },
    h('h2', {}, 'Invite someone'),
    presets,
    camBoxes.length > 1 ? cams : null,
    h(
      'label',
      { for: 'invite-label' },
      'Who is it for? ',
      h('span', { class: 'muted' }, '(only your devices see this)'),
    ),
    label,
    h('button', { type: 'submit', class: 'primary', id: 'invite-make' }, 'Make invite link'),
    status,
  );

  const make = async (tmpl: ReturnType<typeof presetTemplate>, who: string) => {
    const btn = card.querySelector<HTMLButtonElement>('#invite-make');
    if (btn) btn.disabled = true;
    status.textContent = 'Registering the invite on the device…';
    try {
      const exp = o.env.now() + INVITE_LINK_HOURS * 3_600_000;
      const made = await makeInvite(
        {
          owner: o.me.signer,
          deviceId: o.dev.deviceId,
          deviceKey: decodeId('deviceKey', o.dev.deviceKey),
          origin: o.origin,
          exp,
          tmpl,
          ...(who ? { label: who } : {}),
        },
        o.env,
      );
      await o.api.createInvite(o.dev.deviceId, made.env);
      const { link, id } = made;
      replace(card, ...linkPanel(link, who));
      o.made(id);
    } catch (e) {
      status.textContent = householdErrorText(e instanceof HouseholdError ? e.code : 'E_INTERNAL');
      if (btn) btn.disabled = false;
    }
  };
  return card;
}

function linkPanel(link: string, who: string): Node[] {
  const out = h('input', { id: 'invite-link', readonly: true, value: link });
  const copied = h('span', { class: 'muted', role: 'status' });
  return [
    h('h2', {}, who ? `Invite for ${who}` : 'Invite link'),
    h(
      'p',
      {},
      'Send this link only to the person it is for (or let them scan the code). It works once, for ',
      `${INVITE_LINK_HOURS} hours. Nothing is granted until you approve their request here.`,
    ),
    qrCanvas(link),
    out,
    h(
      'div',
      { class: 'btns' },
      h(
        'button',
        {
          type: 'button',
          id: 'invite-copy',
          onclick: () => {
            out.select();
            void navigator.clipboard?.writeText(link).then(
              () => {
                copied.textContent = ' Copied.';
              },
              () => undefined,
            );
          },
        },
        'Copy link',
      ),
      copied,
    ),
  ];
}

// ------------------------------------------------------------------ the invitee

export interface JoinDeps {
  api: HouseholdApi;
  me: ViewerIdentity;
  env: CryptoEnv;
  dir: DeviceDirectory;
  origin: string;
  /** The device was saved (pinned from the link) and the request is about to be sent. */
  joined(dev: PairedDevice): void;
}

/**
 * The invitee's screen. The link's device key is pinned (it must hash to the device ID) before
 * anything is sent, so the redeem and every later message go through the sealed channel to that
 * device only; on a refusal the device is forgotten again.
 */
export class JoinScreen {
  private readonly status = h('p', {
    class: 'pair-status',
    id: 'join-status',
    role: 'status',
    'aria-live': 'polite',
  });

  constructor(
    private readonly main: HTMLElement,
    private readonly d: JoinDeps,
  ) {}

  /** Show the screen for an invite payload (held in memory by the shell, never in the address bar). */
  render(payload: string | undefined): void {
    const p = payload ? parseInviteFragment(payload) : undefined;
    if (!p) {
      this.screen(h('p', { class: 'refused' }, 'This is not a valid invite link.'));
      return;
    }
    if (p.exp <= this.d.env.now()) {
      this.screen(h('p', { class: 'refused' }, 'This invite link has expired. Ask for a new one.'));
      return;
    }
    if (this.d.dir.isPaired(p.d)) {
      this.screen(h('p', {}, 'This phone already has this device. ', h('a', { href: '#/' }, 'Your cameras')));
      return;
    }
    const name = h('input', { id: 'join-name', maxlength: 64, required: true, placeholder: 'e.g. Sam' });
    const form: HTMLElement = h(
      'form',
      {
        class: 'card confirm',
        id: 'join-form',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          const n = name.value.trim();
          if (!n) {
            this.status.textContent = 'Type your name, so the owner knows who asks.';
            return;
          }
          form.remove();
          void this.redeem(p, n);
        },
      },
      h('h2', {}, 'Join a household camera?'),
      h(
        'p',
        {},
        'You were invited to a camera. Ask the person who invited you whether these words match their device:',
      ),
      h('p', { class: 'fingerprint', id: 'join-fingerprint' }, deviceFingerprint(p.d)),
      h('label', { for: 'join-name' }, 'Your name ', h('span', { class: 'muted' }, '(shown to the owner)')),
      name,
      h('button', { type: 'submit', class: 'primary', id: 'join-submit' }, 'Ask to join'),
    );
    this.screen(form);
  }

  /** The device's answer to our request arrived: approved. */
  approved(): void {
    this.status.className = 'pair-status ok';
    replace(this.status, 'Approved. ', h('a', { href: '#/' }, 'Open your cameras'));
  }

  private screen(...body: Node[]): void {
    replace(
      this.main,
      h('section', { class: 'screen join' }, h('h1', {}, 'Invitation'), ...body, this.status),
    );
  }

  private async redeem(p: InviteLink, name: string): Promise<void> {
    const { api, me, env, dir } = this.d;
    this.status.className = 'pair-status progress';
    this.status.textContent = 'Sending your request to the device…';
    const dev: PairedDevice = {
      deviceId: parseId('deviceId', p.d),
      deviceKey: p.dk,
      role: 'invited',
      server: this.d.origin,
      label: 'Invited camera',
      pairedAt: env.now(),
    };
    try {
      const { id, proof } = await inviteRedeemMessage(p, decodeId('userKey', me.keyText), name);
      p.secret.fill(0);
      await dir.add(dev); // re-checks that the key hashes to the device ID
      this.d.joined(dev);
      await api.redeemInvite(p.d, { id, proof, name });
      this.status.className = 'pair-status';
      this.status.textContent =
        'Waiting for the owner to approve. You can close this page; your cameras appear when they do.';
    } catch (e) {
      await dir.forget(dev.deviceId).catch(() => undefined);
      this.status.className = 'pair-status error';
      this.status.textContent = householdErrorText(e instanceof HouseholdError ? e.code : 'E_INTERNAL');
    }
  }
}
