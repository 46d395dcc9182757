/**
 * The household screen (owners only): who has access to a device — owners, members, guests — with
 * their role, scopes, cameras, schedule and end date; each marked "pending" until the device's
 * access log holds the change and this viewer verified that entry. Requests from invite links
 * (approve = sign a grant from the invite's template; deny), edit (revoke the old serial and add a
 * new grant), revoke, and the make-an-invite form. Labels and names go in as text only.
 */
import { type CryptoEnv, decodeId, logKeyHash, signEraseRequest } from '@hearth/protocol';
import { logHref, peopleHref } from '../core/links.js';
import { logBanner } from '../core/log-view.js';
import {
  DAY_NAMES,
  grantFromTemplate,
  grantUpdate,
  groupProblem,
  groupsUpdate,
  inviteRows,
  type MemberRow,
  memberRows,
  nextSerial,
  ownersUpdate,
  type PendingChange,
  type PresetId,
  presetTemplate,
  promoteUpdate,
  REVOKE_NOTE,
  ROLE_PRESETS,
  revokeUpdate,
  type ScheduleForm,
  scheduleForm,
  scheduleOfForm,
  scopesText,
  settlePending,
  templateOfGrant,
  transferUpdate,
  verifiedText,
} from '../core/members.js';
import {
  type AclStateV2,
  type AclUpdateBody,
  type HouseholdApi,
  HouseholdError,
  type InviteInfo,
  type InviteTemplate,
  signAclUpdateV2,
  signGrantV2,
} from '../net/household.js';
import type { LogSnapshot, LogSource } from '../net/log-source.js';
import type { PairedDevice } from '../store/devices.js';
import type { ViewerIdentity } from '../store/keys.js';
import { h, replace } from './dom.js';
import { inviteForm } from './invite-screen.js';
import { householdErrorText } from './text.js';

/** What the household screens share (one per app). */
export interface HouseholdContext {
  api: HouseholdApi;
  log: LogSource;
  me: ViewerIdentity;
  env: CryptoEnv;
  origin: string;
  /** Changes this viewer made, per device, not yet seen verified in the log (kept for the session). */
  pending: Map<string, PendingChange[]>;
  /** The device erased itself at this owner's request: forget it here. */
  erased?: (deviceId: string) => Promise<void>;
}

/** The log's names of keys (logKeyHash), for matching ACL rows with log entries. */
export async function keyHashes(keys: Iterable<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const k of keys) {
    try {
      out.set(k, await logKeyHash(decodeId('userKey', k)));
    } catch {
      // not a user key: no log name
    }
  }
  return out;
}

/** Sign `u` and send it; returns the version now in force. */
export async function sendUpdate(ctx: HouseholdContext, deviceId: string, u: AclUpdateBody): Promise<number> {
  return ctx.api.updateAcl(deviceId, await signAclUpdateV2(ctx.me.signer, u, ctx.env));
}

/**
 * The schedule editor: "Any time", or days of the week and a from–to window in the device's time
 * zone (a window whose end is before its start runs past midnight).
 */
class ScheduleFields {
  private readonly any = h('input', { type: 'checkbox', class: 'sched-any' }) as HTMLInputElement;
  private readonly days = [1, 2, 3, 4, 5, 6, 0].map(
    (d) => h('input', { type: 'checkbox', class: 'sched-day', value: String(d) }) as HTMLInputElement,
  );
  private readonly from = h('input', {
    type: 'time',
    class: 'sched-from',
    'aria-label': 'From',
  }) as HTMLInputElement;
  private readonly to = h('input', {
    type: 'time',
    class: 'sched-to',
    'aria-label': 'To',
  }) as HTMLInputElement;
  private rest: ScheduleForm['rest'] = [];
  readonly el: HTMLElement;

  constructor(f: ScheduleForm) {
    const week = h(
      'div',
      { class: 'sched-week' },
      ...this.days.map((b) => h('label', {}, b, ` ${DAY_NAMES[Number(b.value)]}`)),
    );
    const times = h('div', { class: 'sched-times' }, this.from, ' to ', this.to);
    this.any.addEventListener('change', () => this.sync());
    this.el = h(
      'fieldset',
      { class: 'sched-pick' },
      h('legend', {}, 'When'),
      h('label', {}, this.any, ' Any time'),
      week,
      times,
    );
    this.set(f);
  }

  set(f: ScheduleForm): void {
    this.any.checked = f.any;
    for (const b of this.days) b.checked = f.days.includes(Number(b.value));
    this.from.value = f.from;
    this.to.value = f.to;
    this.rest = f.rest;
    this.sync();
  }

  read(): ScheduleForm {
    return {
      any: this.any.checked,
      days: this.days.filter((b) => b.checked).map((b) => Number(b.value)),
      from: this.from.value,
      to: this.to.value,
      rest: this.rest,
    };
  }

  private sync(): void {
    for (const x of [...this.days, this.from, this.to]) x.disabled = this.any.checked;
  }
}

export class MembersScreen {
  private stopped = false;
  private acl: AclStateV2 | undefined;
  private invites: InviteInfo[] = [];
  private log: LogSnapshot | undefined;
  /** Why the log could not be fetched, if it could not. */
  private logError: string | undefined;
  private hashes = new Map<string, string>();
  /** The add-a-group form, built once (as the invite form). */
  private groupFormEl: HTMLElement | undefined;
  /** The make-an-invite form, built once (re-renders keep what was typed, and the link). */
  private inviteEl: HTMLElement | undefined;
  private readonly status = h('p', {
    class: 'pair-status',
    id: 'people-status',
    role: 'status',
    'aria-live': 'polite',
  });

  constructor(
    private readonly main: HTMLElement,
    private readonly ctx: HouseholdContext,
    private readonly dev: PairedDevice,
    private readonly cameras: readonly string[],
    private readonly showInvite: boolean,
  ) {
    this.log = ctx.log.snapshot(dev.deviceId);
    this.render();
    void this.load();
  }

  stop(): void {
    this.stopped = true;
  }

  /** A request arrived (`invite/request`) or something changed: fetch again. */
  refresh(): void {
    void this.load();
  }

  private get pending(): PendingChange[] {
    return this.ctx.pending.get(this.dev.deviceId) ?? [];
  }

  private async load(): Promise<void> {
    const d = this.dev.deviceId;
    try {
      const acl = await this.ctx.api.getAcl(d);
      if (this.stopped) return;
      this.acl = acl;
      this.hashes = await keyHashes([
        ...acl.owners,
        ...acl.grants.map((g) => String(g.b.sub)),
        ...this.pending.map((p) => p.sub),
      ]);
      this.render();
    } catch (e) {
      if (!this.stopped)
        this.say('error', householdErrorText(e instanceof HouseholdError ? e.code : 'E_INTERNAL'));
      return;
    }
    // Each answer is drawn when it comes: requests to approve do not wait for the log (a device
    // without an access log answers `log/get` late or never).
    await Promise.all([
      this.ctx.api.listInvites(d).then(
        (l) => {
          this.invites = l;
          this.render();
        },
        () => undefined, // an older device has no invites: the list stays empty
      ),
      this.ctx.log.refresh(d).then(
        (s) => {
          this.log = s;
          this.logError = undefined;
          this.ctx.pending.set(
            d,
            settlePending(
              this.pending,
              s.entries.map((x) => x.entry),
              (k) => this.hashes.get(k),
            ),
          );
        },
        (e) => {
          this.logError = e instanceof HouseholdError ? e.code : 'E_INTERNAL';
        },
      ),
    ]);
    if (!this.stopped) this.render();
  }

  private say(kind: 'progress' | 'error' | 'ok', text: string): void {
    this.status.className = `pair-status ${kind}`;
    this.status.textContent = text;
  }

  private render(): void {
    if (this.stopped) return;
    const d = this.dev.deviceId;
    const banner = logBanner(this.log?.status, this.log?.alarms, this.logError);
    const body: Node[] = [];
    if (this.showInvite) {
      this.inviteEl ??= inviteForm({
        api: this.ctx.api,
        me: this.ctx.me,
        env: this.ctx.env,
        origin: this.ctx.origin,
        dev: this.dev,
        cameras: this.cameras,
        made: () => this.refresh(),
      });
      body.push(this.inviteEl);
    }
    if (!this.acl) body.push(h('p', { class: 'muted' }, 'Loading…'));
    else {
      const rows = memberRows(this.acl, {
        me: this.ctx.me.keyText,
        now: this.ctx.env.now(),
        hashOf: (k) => this.hashes.get(k),
        logged: (this.log?.entries ?? []).map((x) => x.entry),
        pending: this.pending,
      });
      const verifiedBy = this.log?.status?.ok ? this.log.status.verifiedBy : 0;
      const requests = inviteRows(this.invites, this.ctx.env.now()).filter((r) => r.actionable);
      if (requests.length) {
        body.push(
          h('h2', {}, 'Asking to join'),
          h(
            'ul',
            { class: 'members', id: 'requests' },
            ...requests.map((r) =>
              h(
                'li',
                { class: 'card member request', 'data-invite': r.id },
                h(
                  'div',
                  { class: 'member-head' },
                  h('strong', {}, r.text),
                  h('span', { class: 'role' }, r.label),
                ),
                h('div', { class: 'muted' }, r.what),
                h(
                  'div',
                  { class: 'btns' },
                  h(
                    'button',
                    { type: 'button', class: 'primary', onclick: () => void this.approve(r.id) },
                    'Approve',
                  ),
                  h('button', { type: 'button', onclick: () => void this.deny(r.id) }, 'Deny'),
                ),
              ),
            ),
          ),
        );
      }
      body.push(
        h('h2', {}, 'People'),
        h('ul', { class: 'members', id: 'members' }, ...rows.map((r) => this.row(r, verifiedBy))),
      );
      if (this.cameras.length) body.push(...this.groupsSection(this.acl));
      body.push(this.eraseSection());
      const others = inviteRows(this.invites, this.ctx.env.now()).filter((r) => !r.actionable);
      if (others.length)
        body.push(
          h('h2', {}, 'Invites'),
          h(
            'ul',
            { class: 'invites', id: 'invites' },
            ...others.map((r) =>
              h('li', { 'data-state': r.state }, h('strong', {}, r.label), ` — ${r.text}`),
            ),
          ),
        );
    }
    replace(
      this.main,
      h(
        'section',
        { class: 'screen people' },
        h('a', { class: 'back', href: '#/' }, '← Your cameras'),
        h('h1', {}, `People on ${this.dev.label}`),
        h(
          'p',
          {
            class: `banner${banner.alarm ? ' alarm' : ''}`,
            id: 'log-banner',
            role: banner.alarm ? 'alert' : 'status',
          },
          banner.text,
        ),
        this.status,
        ...body,
        h(
          'p',
          { class: 'btns' },
          this.showInvite
            ? null
            : h('a', { class: 'button', href: peopleHref(d, true), id: 'invite-new' }, '+ Invite someone'),
          h('a', { class: 'button', href: logHref(d), id: 'open-log' }, 'Access log'),
        ),
      ),
    );
  }

  private row(r: MemberRow, verifiedBy: number): HTMLElement {
    const badge =
      r.status === 'verified'
        ? h('span', { class: 'badge verified' }, verifiedText(verifiedBy))
        : h('span', { class: 'badge pending' }, r.status === 'revoking' ? 'revoked — pending' : 'pending');
    const li: HTMLElement = h(
      'li',
      {
        class: `card member${r.expired ? ' expired' : ''}`,
        'data-sub': r.sub,
        'data-status': r.status,
        'data-role': r.role,
      },
      h(
        'div',
        { class: 'member-head' },
        h('strong', { class: 'member-name' }, r.name),
        r.status === 'revoking' ? null : h('span', { class: 'role' }, r.role),
        badge,
      ),
      r.status === 'revoking'
        ? null
        : h('div', { class: 'muted' }, `${scopesText(r.scopes)} · ${r.where} · ${r.when} · ${r.until}`),
    );
    if (r.grant && !r.you) {
      const actions = h(
        'div',
        { class: 'btns' },
        h('button', { type: 'button', onclick: () => this.editForm(li, r) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', onclick: () => this.revokeConfirm(li, r) }, 'Revoke'),
      );
      li.append(actions);
      actions.append(
        h('button', { type: 'button', onclick: () => this.ownerConfirm(li, r, true) }, 'Make owner'),
        h(
          'button',
          { type: 'button', class: 'hand-over', onclick: () => this.transferConfirm(li, r) },
          'Hand over',
        ),
      );
    } else if (r.role === 'owner' && !r.you && r.status !== 'revoking') {
      li.append(
        h(
          'div',
          { class: 'btns' },
          h(
            'button',
            { type: 'button', class: 'danger', onclick: () => this.ownerConfirm(li, r, false) },
            'Remove as owner',
          ),
        ),
      );
    }
    return li;
  }

  /** Add (`promote`) or remove an owner, after saying what it means. */
  private ownerConfirm(li: HTMLElement, r: MemberRow, promote: boolean): void {
    li.querySelector('.inline')?.remove();
    const acl = this.acl!;
    const box: HTMLElement = h(
      'div',
      { class: 'inline confirm', role: 'alertdialog' },
      h(
        'p',
        {},
        promote
          ? `Make ${r.name} an owner? Owners can do everything you can, including removing you.`
          : `Remove ${r.name} as owner? They lose access at once. ${REVOKE_NOTE}`,
      ),
      h(
        'div',
        { class: 'btns' },
        h(
          'button',
          {
            type: 'button',
            class: promote ? 'primary' : 'danger',
            onclick: () => {
              box.remove();
              void this.change(
                promote ? promoteUpdate(acl, r.sub) : ownersUpdate(acl, { remove: [r.sub] }),
                r.sub,
                promote ? 'grant' : 'revoke',
                promote ? `${r.name} is now an owner.` : `${r.name} is no longer an owner.`,
              );
            },
          },
          promote ? 'Make owner' : 'Remove',
        ),
        h('button', { type: 'button', onclick: () => box.remove() }, 'Cancel'),
      ),
    );
    li.append(box);
  }

  /**
   * Owner transfer in one step: `r` becomes the owner and this viewer stops being one, optionally
   * staying on as a family member (a grant it signs for itself while still an owner).
   */
  private transferConfirm(li: HTMLElement, r: MemberRow): void {
    li.querySelector('.inline')?.remove();
    const acl = this.acl!;
    const keep = h('input', { type: 'checkbox', id: 'hand-over-keep', checked: true }) as HTMLInputElement;
    const box: HTMLElement = h(
      'div',
      { class: 'inline confirm', role: 'alertdialog' },
      h(
        'p',
        {},
        `Hand ${this.dev.label || 'this device'} over to ${r.name}? They become its owner and you stop being one: you can no longer invite, change or revoke anyone, or read the access log.`,
      ),
      h('label', {}, keep, ' Stay on as a family member (live and clips)'),
      h(
        'div',
        { class: 'btns' },
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            id: 'hand-over-confirm',
            onclick: () => {
              box.remove();
              const me = this.ctx.me.keyText;
              const u = (async () => {
                const mine = keep.checked
                  ? await signGrantV2(
                      this.ctx.me.signer,
                      grantFromTemplate(presetTemplate('family'), {
                        d: acl.d,
                        sub: me,
                        now: this.ctx.env.now(),
                        serial: nextSerial(acl),
                      }),
                      this.ctx.env,
                    )
                  : undefined;
                return transferUpdate(acl, r.sub, me, mine);
              })();
              void this.change(u, r.sub, 'grant', `${r.name} is now the owner.`);
            },
          },
          'Hand over',
        ),
        h('button', { type: 'button', onclick: () => box.remove() }, 'Cancel'),
      ),
    );
    li.append(box);
  }

  private revokeConfirm(li: HTMLElement, r: MemberRow): void {
    li.querySelector('.inline')?.remove();
    const box: HTMLElement = h(
      'div',
      { class: 'inline confirm', role: 'alertdialog' },
      h(
        'p',
        {},
        `Revoke ${r.name}? The device stops their live views at once and seals no new clip for them.`,
      ),
      h('p', { class: 'revoke-note' }, REVOKE_NOTE),
      h(
        'div',
        { class: 'btns' },
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            onclick: () => {
              box.remove();
              void this.change(revokeUpdate(this.acl!, r.sub), r.sub, 'revoke', `${r.name} revoked.`);
            },
          },
          'Revoke',
        ),
        h('button', { type: 'button', onclick: () => box.remove() }, 'Cancel'),
      ),
    );
    li.append(box);
  }

  private editForm(li: HTMLElement, r: MemberRow): void {
    li.querySelector('.inline')?.remove();
    const g = r.grant!;
    const current = r.preset;
    const select = h(
      'select',
      { 'aria-label': 'Role template' },
      current ? null : h('option', { value: '' }, 'Keep as it is'),
      ...ROLE_PRESETS.map((p) => h('option', { value: p.id, selected: p.id === current }, p.name)),
    );
    const label = h('input', { value: g.label ?? '', maxlength: 64, 'aria-label': 'Name' });
    const tmplOf = (): InviteTemplate => {
      const id = select.value as PresetId | '';
      return id ? presetTemplate(id, g.cams) : templateOfGrant(g);
    };
    const when = new ScheduleFields(scheduleForm(tmplOf().sched));
    const start = tmplOf();
    const camBoxes = this.cameras.map(
      (c) =>
        h('input', {
          type: 'checkbox',
          class: 'where-cam',
          value: c,
          checked: start.cams?.includes(c) ?? false,
        }) as HTMLInputElement,
    );
    const groupBoxes = Object.keys(this.acl?.groups ?? {}).map(
      (g) =>
        h('input', {
          type: 'checkbox',
          class: 'where-group',
          value: g,
          checked: start.groups?.includes(g) ?? false,
        }) as HTMLInputElement,
    );
    const where = h(
      'fieldset',
      { class: 'where-pick' },
      h('legend', {}, 'Where (none ticked: every camera)'),
      ...camBoxes.map((b) => h('label', {}, b, ` ${b.value}`)),
      ...groupBoxes.map((b) => h('label', {}, b, ` Group ${b.value}`)),
    );
    select.addEventListener('change', () => when.set(scheduleForm(tmplOf().sched)));
    const problem = h('p', { class: 'form-error', role: 'alert' });
    const box: HTMLElement = h(
      'form',
      {
        class: 'inline edit',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          const tmpl = tmplOf();
          const sched = scheduleOfForm(when.read());
          if (!sched.ok) {
            problem.textContent = sched.error;
            return;
          }
          if (sched.sched) tmpl.sched = sched.sched;
          else delete tmpl.sched;
          const cams = camBoxes.filter((b) => b.checked).map((b) => b.value);
          const groups = groupBoxes.filter((b) => b.checked).map((b) => b.value);
          if (cams.length) tmpl.cams = cams;
          else delete tmpl.cams;
          if (groups.length) tmpl.groups = groups;
          else delete tmpl.groups;
          box.remove();
          void this.regrant(r.sub, tmpl, label.value.trim(), `${r.name} updated.`);
        },
      },
      h('label', {}, 'Role ', select),
      h('label', {}, 'Name ', label),
      when.el,
      this.cameras.length || groupBoxes.length ? where : null,
      problem,
      h(
        'div',
        { class: 'btns' },
        h('button', { type: 'submit', class: 'primary' }, 'Save'),
        h('button', { type: 'button', onclick: () => box.remove() }, 'Cancel'),
      ),
    );
    li.append(box);
  }

  /**
   * Erase the household (S8): after typing the device's name, an owner-signed `household/erase`.
   * The device erases its data on the server and its own, and starts again as a new device.
   */
  private eraseSection(): HTMLElement {
    const name = this.dev.label || 'erase';
    const typed = h('input', {
      id: 'erase-name',
      'aria-label': 'Device name',
      autocomplete: 'off',
    }) as HTMLInputElement;
    const problem = h('p', { class: 'form-error', role: 'alert' });
    return h(
      'form',
      {
        class: 'card erase',
        id: 'erase-form',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          if (typed.value.trim() !== name) {
            problem.textContent = `Type ${name} to confirm.`;
            return;
          }
          void this.erase();
        },
      },
      h('h2', {}, 'Erase this household'),
      h(
        'p',
        {},
        'The device erases its recordings and log on the server, then its own key, people and recordings, and starts again as a new device to pair. Nobody can watch it until someone pairs it again. Clips already downloaded cannot be recalled.',
      ),
      h('label', { for: 'erase-name' }, `Type ${name} to confirm `),
      typed,
      problem,
      h(
        'div',
        { class: 'btns' },
        h('button', { type: 'submit', class: 'danger', id: 'erase-submit' }, 'Erase'),
      ),
    );
  }

  private async erase(): Promise<void> {
    const d = this.dev.deviceId;
    this.say('progress', 'Asking the device to erase itself…');
    try {
      await this.ctx.api.eraseHousehold(d, await signEraseRequest(this.ctx.me.signer, { d }, this.ctx.env));
      this.say('ok', 'The device is erasing itself.');
      await this.ctx.erased?.(d);
    } catch (e) {
      this.say('error', householdErrorText(e instanceof HouseholdError ? e.code : 'E_INTERNAL'));
    }
  }

  /** Camera groups: each with its cameras and a Delete; a form to add one. One signed update each. */
  private groupsSection(acl: AclStateV2): Node[] {
    const groups = acl.groups ?? {};
    const form = this.groupForm();
    return [
      h('h2', {}, 'Camera groups'),
      h(
        'ul',
        { class: 'members', id: 'groups' },
        ...Object.entries(groups).map(([g, cams]) =>
          h(
            'li',
            { class: 'card group', 'data-group': g },
            h('strong', {}, g),
            h('span', { class: 'muted' }, ` ${cams.join(', ')}`),
            h(
              'div',
              { class: 'btns' },
              h(
                'button',
                {
                  type: 'button',
                  class: 'danger',
                  onclick: () => {
                    const rest = { ...groups };
                    delete rest[g];
                    void this.change(
                      groupsUpdate(acl, rest),
                      undefined,
                      'revoke',
                      `Group ${g} deleted: whoever had it only through it no longer sees its cameras.`,
                    );
                  },
                },
                'Delete',
              ),
            ),
          ),
        ),
      ),
      form,
    ];
  }

  /**
   * The add-a-group form, built once: the screen draws itself again whenever an answer comes, and
   * what the owner typed or ticked must survive that. It reads the ACL when it is submitted.
   */
  private groupForm(): HTMLElement {
    if (this.groupFormEl) return this.groupFormEl;
    const name = h('input', {
      id: 'group-name',
      maxlength: 32,
      placeholder: 'e.g. upstairs',
      'aria-label': 'Group name',
    }) as HTMLInputElement;
    const boxes = this.cameras.map(
      (c) => h('input', { type: 'checkbox', class: 'group-cam', value: c }) as HTMLInputElement,
    );
    const problem = h('p', { class: 'form-error', role: 'alert' });
    this.groupFormEl = h(
      'form',
      {
        class: 'card group-new',
        id: 'group-new',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          const acl = this.acl;
          if (!acl) return;
          const groups = acl.groups ?? {};
          const n = name.value.trim();
          const cams = boxes.filter((b) => b.checked).map((b) => b.value);
          const bad = groupProblem(n, cams, groups);
          problem.textContent = bad ?? '';
          if (bad) return;
          name.value = '';
          for (const b of boxes) b.checked = false;
          void this.change(
            groupsUpdate(acl, { ...groups, [n]: cams }),
            undefined,
            'grant',
            `Group ${n} added.`,
          );
        },
      },
      h('label', { for: 'group-name' }, 'New group '),
      name,
      h('div', { class: 'cams-pick' }, ...boxes.map((b) => h('label', {}, b, ` ${b.value}`))),
      problem,
      h('div', { class: 'btns' }, h('button', { type: 'submit', id: 'group-add' }, 'Add group')),
    );
    return this.groupFormEl;
  }

  /** Grant `sub` from `tmpl`, revoking what it had (an edit), or fresh (an approval). */
  private async regrant(sub: string, tmpl: InviteTemplate, label: string, done: string): Promise<void> {
    const acl = this.acl;
    if (!acl) return;
    this.say('progress', 'Signing and sending the change…');
    const grant = grantFromTemplate(tmpl, {
      d: acl.d,
      sub,
      now: this.ctx.env.now(),
      serial: nextSerial(acl),
      ...(label ? { label } : {}),
    });
    const replaces = acl.grants.some((e) => e.b.sub === sub) ? sub : undefined;
    const u = signGrantV2(this.ctx.me.signer, grant, this.ctx.env).then((env) =>
      grantUpdate(acl, env, replaces),
    );
    await this.change(u, sub, 'grant', done);
  }

  /** Sign and send `u`; a change to a person (`sub`) shows as pending until the log has it. */
  private async change(
    u: AclUpdateBody | Promise<AclUpdateBody>,
    sub: string | undefined,
    kind: PendingChange['kind'],
    done: string,
  ): Promise<void> {
    const d = this.dev.deviceId;
    this.say('progress', 'Signing and sending the change…');
    try {
      const ver = await sendUpdate(this.ctx, d, await u);
      if (sub === undefined) {
        this.say('ok', done);
      } else {
        this.ctx.pending.set(d, [...this.pending, { sub, ver, kind }]);
        this.say('ok', `${done} It shows as pending until the device's log has it.`);
      }
    } catch (e) {
      this.say('error', householdErrorText(e instanceof HouseholdError ? e.code : 'E_INTERNAL'));
    }
    await this.load();
  }

  private async approve(id: string): Promise<void> {
    const inv = this.invites.find((i) => i.id === id);
    if (!inv?.sub) return;
    await this.regrant(
      inv.sub,
      inv.tmpl,
      inv.label ?? inv.name ?? '',
      `${inv.name ?? 'They'} can now use the camera.`,
    );
  }

  private async deny(id: string): Promise<void> {
    try {
      await this.ctx.api.denyInvite(this.dev.deviceId, id);
      this.say('ok', 'Request denied.');
    } catch (e) {
      this.say('error', householdErrorText(e instanceof HouseholdError ? e.code : 'E_INTERNAL'));
    }
    await this.load();
  }
}
