/**
 * The access-log screen (owners): the device's log entries this viewer verified, as sentences,
 * newest first, with a filter; above them "verified by N of your devices", or a red "Log tampered —
 * possible attack (CODE)" banner on any tampered verdict of the log monitor (it stays: a later
 * honest update does not hide it).
 */

import { peopleHref } from '../core/links.js';
import { LOG_FILTERS, type LogFilter, logBanner, logRows } from '../core/log-view.js';
import { HouseholdError } from '../net/household.js';
import type { LogSnapshot } from '../net/log-source.js';
import type { PairedDevice } from '../store/devices.js';
import { setAlarm } from './alarm.js';
import { h, replace } from './dom.js';
import { type HouseholdContext, keyHashes } from './members-screen.js';
import { householdErrorText } from './text.js';

export class LogScreen {
  private stopped = false;
  private filter: LogFilter = 'all';
  private snap: LogSnapshot | undefined;
  private names = new Map<string, string>();
  private error: string | undefined;
  private readonly status = h('p', { class: 'pair-status', id: 'log-status', role: 'status' });
  private readonly list = h('ul', { class: 'log', id: 'log' });
  private readonly banner = h('p', { class: 'banner', id: 'log-banner' });

  constructor(
    main: HTMLElement,
    private readonly ctx: HouseholdContext,
    private readonly dev: PairedDevice,
  ) {
    this.snap = ctx.log.snapshot(dev.deviceId);
    const select = h(
      'select',
      {
        id: 'log-filter',
        'aria-label': 'Show',
        onchange: () => {
          this.filter = select.value as LogFilter;
          this.draw();
        },
      },
      ...LOG_FILTERS.map((f) => h('option', { value: f.id }, f.name)),
    );
    replace(
      main,
      h(
        'section',
        { class: 'screen log-screen' },
        h('a', { class: 'back', href: peopleHref(dev.deviceId) }, '← People'),
        h('h1', {}, `Access log of ${dev.label}`),
        this.banner,
        h(
          'div',
          { class: 'filters' },
          select,
          h('button', { type: 'button', id: 'log-refresh', onclick: () => void this.load() }, 'Refresh'),
        ),
        this.status,
        this.list,
      ),
    );
    this.draw();
    void this.load();
  }

  stop(): void {
    this.stopped = true;
    setAlarm(false);
  }

  private async load(): Promise<void> {
    this.status.textContent = 'Fetching and checking the log…';
    try {
      const acl = await this.ctx.api.getAcl(this.dev.deviceId).catch(() => undefined);
      const snap = await this.ctx.log.refresh(this.dev.deviceId);
      if (this.stopped) return;
      const keys = new Map<string, string>([[this.ctx.me.keyText, 'you']]);
      for (const g of acl?.grants ?? []) {
        const b = g.b as { sub: string; label?: string };
        if (b.label) keys.set(b.sub, b.label);
      }
      for (const o of acl?.owners ?? []) if (!keys.has(o)) keys.set(o, 'an owner');
      const hashes = await keyHashes(keys.keys());
      this.names = new Map([...hashes].map(([k, hash]) => [hash, keys.get(k)!]));
      this.snap = snap;
      this.error = undefined;
      this.status.textContent = '';
    } catch (e) {
      this.error = e instanceof HouseholdError ? e.code : 'E_INTERNAL';
      if (!this.stopped) this.status.textContent = householdErrorText(this.error);
    }
    if (!this.stopped) this.draw();
  }

  private draw(): void {
    const b = logBanner(this.snap?.status, this.snap?.alarms, this.error);
    this.banner.className = `banner${b.alarm ? ' alarm' : ''}`;
    this.banner.setAttribute('role', b.alarm ? 'alert' : 'status');
    this.banner.textContent = b.text;
    setAlarm(b.alarm);
    const rows = logRows(this.snap?.entries ?? [], this.filter, (x) => this.names.get(x));
    replace(
      this.list,
      ...rows.map((r) =>
        h(
          'li',
          { class: `log-row${r.alert ? ' alert' : ''}`, 'data-kind': r.kind, 'data-index': r.index },
          h('time', {}, r.time),
          h('span', {}, r.text),
        ),
      ),
      rows.length ? null : h('li', { class: 'muted' }, this.snap ? 'Nothing to show.' : ''),
    );
  }
}
