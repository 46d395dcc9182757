/**
 * A camera's timeline for one day: the device's `event` blobs of the day's hours, each fetched,
 * verified and opened (clips/open.ts), shown newest first with their thumbnail and time, filtered by
 * type; blobs that fail a check are listed too, in red ("possible attack" for an attack code), never
 * hidden. Selecting an event plays its clip as it streams (clips/player.ts), marked unverified until
 * the last chunk confirms it; then it can be downloaded. Delete removes the event, its clip and its
 * snapshot from the store, after a confirmation.
 */
import { VerificationError } from '@hearth/protocol';
import { type BlobContext, describeFailure, openSmallBlob } from '../clips/open.js';
import { ClipPlayer, type PlayerState } from '../clips/player.js';
import { decodeEventRecord, type EventRecord, type EventType } from '../core/event-record.js';
import { liveHref, timelineHref } from '../core/links.js';
import {
  clipFileName,
  clockTime,
  dayBounds,
  dayHourRange,
  dayOf,
  EventList,
  shiftDay,
} from '../core/timeline.js';
import { setAlarm } from './alarm.js';
import { h, replace } from './dom.js';
import { fromB64, pictureCanvas } from './picture.js';

/** How many event blobs are fetched at once. */
const PARALLEL = 4;

export interface TimelineDeps {
  /** Undefined when clips cannot be opened here; `why` says why. */
  ctx: BlobContext | undefined;
  why?: string;
  /** Device label, for the heading. */
  label: string;
  now?: () => number;
}

export class TimelineScreen {
  private readonly list: EventList;
  private readonly types = new Set<EventType>();
  private player: ClipPlayer | undefined;
  private closed = false;
  private readonly listEl = h('ul', { class: 'events', id: 'events' });
  private readonly badEl = h('ul', { class: 'events bad', id: 'bad-blobs' });
  private readonly note = h('p', { class: 'muted', id: 'events-note', role: 'status' });
  private readonly video = h('video', { id: 'clip', controls: true, muted: true, playsinline: true });
  private readonly status = h('p', {
    id: 'clip-status',
    class: 'status',
    role: 'status',
    'data-state': 'idle',
  });
  private readonly download = h('a', { id: 'clip-download', class: 'button', hidden: true }, 'Download');
  private readonly del = h(
    'button',
    { type: 'button', id: 'clip-delete', class: 'danger', hidden: true },
    'Delete',
  );
  private readonly playerEl = h('div', { class: 'player', id: 'player', hidden: true });
  private readonly thumbs = new Map<string, HTMLCanvasElement>();

  constructor(
    root: HTMLElement,
    readonly deviceId: string,
    readonly camera: string,
    readonly day: string,
    private readonly deps: TimelineDeps,
  ) {
    const now = deps.now ?? Date.now;
    this.video.muted = true;
    const { start, end } = dayBounds(day);
    this.list = new EventList(camera, start, end);
    const today = dayOf(now());
    const filter = (t: EventType, label: string) =>
      h(
        'label',
        { class: 'filter' },
        h('input', {
          type: 'checkbox',
          'data-type': t,
          onchange: (e: Event) => {
            if ((e.target as HTMLInputElement).checked) this.types.add(t);
            else this.types.delete(t);
            this.renderList();
          },
        }),
        ` ${label}`,
      );
    this.playerEl.append(this.video, this.status, h('p', { class: 'actions' }, this.download, this.del));
    replace(
      root,
      h(
        'section',
        { class: 'screen timeline', 'data-device': deviceId, 'data-camera': camera },
        h('h1', {}, `${camera} · events`),
        h(
          'p',
          { class: 'muted' },
          deps.label,
          ' · ',
          h('a', { href: liveHref(deviceId, camera) }, 'Live view'),
        ),
        h(
          'nav',
          { class: 'days' },
          h(
            'a',
            { href: timelineHref(deviceId, camera, shiftDay(day, -1)), id: 'day-prev' },
            '‹ Previous day',
          ),
          h('strong', { id: 'day' }, day === today ? `Today (${day})` : day),
          day < today &&
            h('a', { href: timelineHref(deviceId, camera, shiftDay(day, 1)), id: 'day-next' }, 'Next day ›'),
        ),
        h('p', { class: 'filters' }, 'Show only: ', filter('motion', 'motion'), filter('sound', 'sound')),
        this.playerEl,
        this.note,
        this.listEl,
        this.badEl,
      ),
    );
    if (!deps.ctx) this.note.textContent = deps.why ?? 'Recorded events are not available in this browser.';
    else void this.load(deps.ctx);
  }

  private async load(ctx: BlobContext): Promise<void> {
    this.note.textContent = 'Loading events…';
    try {
      const q = dayHourRange(this.day);
      this.list.listed(await ctx.api.listBlobs(ctx.dev, { kind: 'event', ...q }));
    } catch (e) {
      this.note.textContent = describeFailure(e).message;
      return;
    }
    this.renderList();
    const queue = this.list.pending();
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined && !this.closed; id = queue.shift()) {
        try {
          const { plaintext, meta } = await openSmallBlob(ctx, id, 'event');
          const rec = decodeEventRecord(plaintext);
          if (rec.cam !== meta.cam)
            throw new VerificationError('E_BAD_BINDING', 'event record names another camera than its blob');
          this.list.opened(id, rec);
        } catch (e) {
          const f = describeFailure(e);
          this.list.failed(id, f.code, f.message);
        }
        if (!this.closed) this.renderList();
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  }

  private renderList(): void {
    const v = this.list.view({ types: this.types });
    this.listEl.replaceChildren(...v.events.map((e) => this.eventItem(e.id, e.rec)));
    this.badEl.replaceChildren(
      ...v.bad.map((b) =>
        h(
          'li',
          { class: `bad-blob${b.attack ? ' attack' : ''}`, 'data-code': b.code, 'data-id': b.id },
          b.message,
        ),
      ),
    );
    if (this.list.attacked) setAlarm(true);
    this.note.textContent =
      v.loading > 0
        ? `Loading ${v.loading} event${v.loading === 1 ? '' : 's'}…`
        : v.events.length === 0
          ? 'No events on this day.'
          : `${v.events.length} event${v.events.length === 1 ? '' : 's'}.`;
  }

  private eventItem(id: string, rec: EventRecord): HTMLElement {
    let thumb = this.thumbs.get(id);
    if (!thumb) {
      thumb = pictureCanvas(fromB64(rec.thumb), 'thumb');
      this.thumbs.set(id, thumb);
    }
    return h(
      'li',
      { class: 'event', 'data-id': id, 'data-type': rec.type },
      h(
        'button',
        { type: 'button', class: 'event-open', disabled: !rec.clip, onclick: () => this.play(id, rec) },
        thumb,
        h('span', { class: 'event-time' }, clockTime(rec.t)),
        h('span', { class: `event-type ${rec.type}` }, rec.type),
        !rec.clip && h('span', { class: 'muted' }, 'no clip'),
      ),
    );
  }

  /** Play an event's clip. */
  play(id: string, rec: EventRecord): void {
    const ctx = this.deps.ctx;
    if (!ctx || !rec.clip) return;
    this.player?.stop();
    setAlarm(this.list.attacked);
    this.playerEl.hidden = false;
    this.download.hidden = true;
    this.del.hidden = false;
    this.del.onclick = () => void this.remove(ctx, id, rec);
    const p = new ClipPlayer(this.video, {
      ctx,
      id: rec.clip,
      camera: this.camera,
      onState: (s) => this.paint(p, s, rec),
    });
    this.player = p;
    void p.start();
  }

  private paint(p: ClipPlayer, s: PlayerState, rec: EventRecord): void {
    if (p !== this.player) return;
    this.status.dataset.state = s.name;
    if (s.name === 'failed') this.status.dataset.code = s.code;
    else delete this.status.dataset.code;
    this.status.classList.toggle('attack', s.name === 'failed' && s.attack);
    this.status.textContent =
      s.name === 'loading'
        ? 'Loading the clip…'
        : s.name === 'unconfirmed'
          ? `Playing — not verified yet (${s.chunks} of ${s.of} parts). It is checked when the last part arrives.`
          : s.name === 'confirmed'
            ? `Verified: this is the clip the device recorded at ${clockTime(rec.t)}.`
            : s.attack
              ? `Possible attack (${s.code}): the clip failed a check and was stopped.`
              : s.message;
    if (s.name === 'failed' && s.attack) setAlarm(true);
    const url = p.fileUrl();
    this.download.hidden = !url;
    if (url) {
      this.download.href = url;
      this.download.download = clipFileName(this.camera, p.t0 || rec.t);
    }
  }

  private async remove(ctx: BlobContext, id: string, rec: EventRecord): Promise<void> {
    if (!confirm(`Delete the ${rec.type} event of ${clockTime(rec.t)} and its clip? This cannot be undone.`))
      return;
    try {
      for (const b of [rec.clip, rec.snap, id]) if (b) await ctx.api.deleteBlob(ctx.dev, b);
    } catch (e) {
      this.status.textContent = `Could not delete: ${describeFailure(e).message}`;
      return;
    }
    this.player?.stop();
    this.player = undefined;
    this.playerEl.hidden = true;
    this.list.remove(id);
    this.renderList();
  }

  stop(): void {
    this.closed = true;
    this.player?.stop();
    this.player = undefined;
  }
}
