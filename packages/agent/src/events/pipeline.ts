/**
 * From a recording to the server (docs/events-contract.md §5). For each {@link EventRecording}:
 *
 * 1. the recipients, per blob: the reader keys of the users whose grant allows, on that camera
 *    now (schedules included) and for content made at the blob's start (history floors), `clips`
 *    for the clip, `snapshots` for the snapshot and `timeline` for the event record (which carries
 *    the ~160 px thumbnail); owners get all three. A blob nobody may see is not sealed; no
 *    recipient at all: nothing is sealed, and that is logged once until there are some again;
 * 2. seal the clip (one chunk per fMP4 fragment, a fragment over 64 KiB split), the snapshot, and
 *    an event record (docs/protocol.md) with a ~160 px JPEG thumbnail made by ffmpeg from the
 *    snapshot (at most 8 KiB);
 * 3. put the three in the {@link Outbox} (bounded, oldest dropped first), from which the
 *    {@link Uploader} drains them through a {@link BlobSink} when one is set;
 * 4. apply retention (per camera `retention: {days, bytes}`) to the outbox and to the index of
 *    what was uploaded (deleting there through the sink), after each event and every hour.
 */
import { join } from 'node:path';
import { type Logger, silentLogger } from '@hearth/node';
import {
  type BlobKind,
  BlobSealer,
  CLIP_CHUNK_BYTES,
  type CryptoEnv,
  concat,
  encodeEventRecord,
  eventThumb,
  fragmentChunks,
  MAX_EVENT_THUMB_BYTES,
  type ReaderKey,
  type Signer,
  systemEnv,
} from '@hearth/protocol';
import { ffmpegPipe, isJpeg } from '../media/still.js';
import type { RetentionConfig } from './config.js';
import { type BlobSink, Outbox, type OutboxKind, type OutboxMeta, Uploader } from './outbox.js';
import type { SealedScope } from './readers.js';
import type { EventRecording } from './recorder.js';
import { retentionPlan, UploadedIndex } from './retention.js';

/** Chunk bound of the sealed clips (a fragment over it is split). */
export const CLIP_CHUNK = CLIP_CHUNK_BYTES;
/** Thumbnail width (px). */
export const THUMB_WIDTH = 160;
const HOUR = 3_600_000;

/** The header kind of an event record. */
export const EVENT_BLOB_KIND: BlobKind = 'event';

/** The ffmpeg argv that shrinks a JPEG to `width` px wide at quality `q` (2 best .. 31). */
export function thumbArgs(width: number, q: number): string[] {
  return [
    ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-threads', '1'],
    ...['-f', 'mjpeg', '-i', 'pipe:0', '-frames:v', '1'],
    ...['-vf', `scale=${Math.floor(width)}:-2`, '-q:v', String(Math.floor(q)), '-f', 'mjpeg', 'pipe:1'],
  ];
}

/** A JPEG thumbnail of `jpeg`, ≤ 8 KiB (worse quality, then smaller, until it fits), or undefined. */
export async function makeThumbnail(
  jpeg: Uint8Array,
  o: { ffmpegPath?: string; timeoutMs?: number } = {},
): Promise<Uint8Array | undefined> {
  for (const [w, q] of [
    [THUMB_WIDTH, 5],
    [THUMB_WIDTH, 12],
    [THUMB_WIDTH, 24],
    [96, 31],
  ] as const) {
    const out = await ffmpegPipe(thumbArgs(w, q), Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.length), {
      ...(o.ffmpegPath ? { ffmpegPath: o.ffmpegPath } : {}),
      timeoutMs: o.timeoutMs ?? 10_000,
      cap: 1024 * 1024,
      label: 'thumbnail',
    });
    if (isJpeg(out) && out.length <= MAX_EVENT_THUMB_BYTES) return new Uint8Array(out);
  }
  return undefined;
}

export interface EventPipelineOptions {
  readonly dataDir: string;
  /** The device's signer (its `hdk_` key): the blobs' sender. */
  readonly device: Signer;
  /**
   * The reader keys to seal a new blob of `camera` to, now (ReaderKeyStore.recipients): for the
   * clip `clips`, the snapshot `snapshots`, the event record `timeline`; `at` is the blob's
   * content time (its start), for the grants' history floors.
   */
  readonly recipients: (
    camera: string,
    now: number,
    o: { scope: SealedScope; at: number },
  ) => readonly ReaderKey[];
  /** A camera's retention (its camera map entry); undefined: the defaults. */
  readonly retention?: (camera: string) => RetentionConfig | undefined;
  /** Bound of the outbox (bytes). Default 1 GiB. */
  readonly outboxBytes?: number;
  /** Where blobs go; without one they stay in the outbox (and can be given later: setSink). */
  readonly sink?: BlobSink;
  readonly ffmpegPath?: string;
  readonly log?: Logger;
  readonly env?: CryptoEnv;
  /** Uploader backoff (ms). */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** How often retention runs besides after each event (ms). Default 1 hour; 0: never. */
  readonly retentionEveryMs?: number;
  /** After an event is sealed into the outbox (the second notification: the clip is ready). */
  readonly onSealed?: (e: {
    camera: string;
    type: 'motion' | 'sound';
    t: number;
    clip?: string;
    thumb: string;
    /** The user keys (`huk_…`) the blobs were sealed to (the access log's `clip/sealed`). */
    readers: readonly string[];
  }) => void;
}

/** What one recording became (tests, logs). */
export interface SealedEvent {
  readonly camera: string;
  readonly clip: OutboxMeta | undefined;
  readonly snapshot: OutboxMeta | undefined;
  readonly event: OutboxMeta | undefined;
  /** Every user key any of the three blobs is sealed to (each blob's own list is in its meta). */
  readonly readers: readonly string[];
}

export class EventPipeline {
  readonly outbox: Outbox;
  readonly uploader: Uploader;
  readonly uploaded: UploadedIndex;
  private readonly log: Logger;
  private readonly env: CryptoEnv;
  private readonly silentCams = new Set<string>();
  private sink: BlobSink | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private retentionRun: Promise<unknown> = Promise.resolve();
  /** Recordings sealed, and skipped for want of readers (stats, tests). */
  sealed = 0;
  skipped = 0;

  constructor(private readonly o: EventPipelineOptions) {
    this.log = o.log ?? silentLogger;
    this.env = o.env ?? systemEnv;
    this.outbox = new Outbox({
      dir: join(o.dataDir, 'outbox'),
      ...(o.outboxBytes !== undefined ? { maxBytes: o.outboxBytes } : {}),
      log: this.log,
    });
    this.uploaded = UploadedIndex.load(o.dataDir);
    this.uploader = new Uploader(this.outbox, {
      log: this.log,
      ...(o.minBackoffMs !== undefined ? { minBackoffMs: o.minBackoffMs } : {}),
      ...(o.maxBackoffMs !== undefined ? { maxBackoffMs: o.maxBackoffMs } : {}),
      onUploaded: (m) => {
        for (const f of this.uploaded.add(m))
          this.log.warn(
            { id: f.id, kind: f.kind, cam: f.cam },
            'uploaded-blob index full: forgot the oldest',
          );
      },
    });
    this.setSink(o.sink);
    const every = o.retentionEveryMs ?? HOUR;
    if (every > 0) {
      this.timer = setInterval(() => void this.applyRetention(), every);
      this.timer.unref();
    }
  }

  /** Give (or take away) the sink: the real BlobClient once the server is known. */
  setSink(sink: BlobSink | undefined): void {
    this.sink = sink;
    this.uploader.setSink(sink);
    if (sink) void this.applyRetention();
  }

  /** Seal and queue one recording (serialised: one at a time). Never rejects; failures are logged. */
  handle(rec: EventRecording): Promise<SealedEvent | undefined> {
    const p = this.chain.then(() => this.seal(rec));
    this.chain = p.catch(() => undefined);
    return p.then(
      async (r) => {
        await this.applyRetention();
        return r;
      },
      (e) => {
        this.log.error({ camera: rec.camera, err: (e as Error).message }, 'could not seal a recording');
        return undefined;
      },
    );
  }

  private async seal(rec: EventRecording): Promise<SealedEvent | undefined> {
    const now = this.env.now();
    // The recorder's wall times come from performance.now(): fractional ms; the headers take integers.
    const trigger = Math.round(rec.trigger);
    const t0 = Math.min(Math.round(rec.start), trigger);
    const t1 = Math.max(Math.round(rec.end), trigger);
    // Each blob to the keys whose grant covers its scope, now, for content made at its start.
    const to = (scope: SealedScope, at: number) => [...this.o.recipients(rec.camera, now, { scope, at })];
    const clipTo = to('clips', t0);
    const snapTo = rec.snapshot ? to('snapshots', trigger) : [];
    const eventTo = to('timeline', trigger);
    const recipients = [
      ...new Map([...clipTo, ...snapTo, ...eventTo].map((r) => [r.userKey, r])).values(),
    ].sort((a, b) => (a.userKey < b.userKey ? -1 : a.userKey > b.userKey ? 1 : 0));
    if (recipients.length === 0) {
      this.skipped++;
      if (!this.silentCams.has(rec.camera)) {
        this.silentCams.add(rec.camera);
        this.log.warn(
          { camera: rec.camera },
          'no viewer with clips access has registered a reader key: recordings are not kept (logged once)',
        );
      }
      return undefined;
    }
    this.silentCams.delete(rec.camera);
    const readers = recipients.map((r) => r.userKey);
    const base = { device: this.o.device, camera: rec.camera, env: this.env };
    const put = async (
      kind: OutboxKind,
      header: BlobKind,
      from: number,
      until: number,
      chunks: Uint8Array[],
      recipients: ReaderKey[],
    ): Promise<OutboxMeta | undefined> => {
      if (recipients.length === 0) return undefined; // nobody may see this one
      const s = await BlobSealer.create({
        ...base,
        recipients,
        kind: header,
        t0: from,
        maxChunkBytes: CLIP_CHUNK,
      });
      const frames = await Promise.all(chunks.map((c, i) => s.sealChunk(c, i === chunks.length - 1)));
      const { bytes } = await s.finish({ t1: until });
      return this.outbox.add(
        {
          id: s.id,
          kind,
          hr: Math.floor(from / HOUR),
          cam: rec.camera,
          t: trigger,
          readers: recipients.map((r) => r.userKey),
        },
        concat(bytes, ...frames),
      );
    };
    const clip = await put('clip', 'clip', t0, t1, fragmentChunks(rec.clip), clipTo);
    const snapshot = rec.snapshot
      ? await put('snapshot', 'snapshot', trigger, trigger, splitEvery(rec.snapshot, CLIP_CHUNK), snapTo)
      : undefined;
    let thumb = '';
    if (rec.snapshot) {
      try {
        const t = await makeThumbnail(
          rec.snapshot,
          this.o.ffmpegPath ? { ffmpegPath: this.o.ffmpegPath } : {},
        );
        if (t) thumb = eventThumb(t);
      } catch (e) {
        this.log.warn({ camera: rec.camera, code: 'thumbnail-failed' }, (e as Error).message);
      }
    }
    const record = encodeEventRecord({
      v: 1,
      type: rec.kind,
      cam: rec.camera,
      t: trigger,
      t1,
      ...(clip ? { clip: clip.id } : {}),
      ...(snapshot ? { snap: snapshot.id } : {}),
      thumb,
    });
    const event = await put('event', EVENT_BLOB_KIND, trigger, t1, [record], eventTo);
    this.sealed++;
    this.log.info(
      { camera: rec.camera, readers: readers.length, clip: clip?.id, event: event?.id },
      'event sealed into the outbox',
    );
    try {
      this.o.onSealed?.({
        camera: rec.camera,
        type: rec.kind,
        t: trigger,
        thumb,
        ...(clip ? { clip: clip.id } : {}),
        readers,
      });
    } catch (e) {
      this.log.error({ camera: rec.camera, err: String(e) }, 'onSealed listener threw');
    }
    return { camera: rec.camera, clip, snapshot, event, readers };
  }

  /**
   * Delete what retention no longer allows: from the outbox locally, from the server through the
   * sink (and then from the index; a failed delete is tried again next time). Never rejects.
   */
  applyRetention(): Promise<{ local: number; remote: number }> {
    // One run at a time: a run asked for during another follows it.
    const p = this.retentionRun.then(() => this.retentionOnce());
    this.retentionRun = p.catch(() => undefined);
    return p;
  }

  private async retentionOnce(): Promise<{ local: number; remote: number }> {
    const rule = this.o.retention ?? (() => undefined);
    const local = this.outbox.list();
    const remote = this.uploaded.list();
    const doomed = new Set(retentionPlan([...local, ...remote], rule, this.env.now()));
    let nl = 0;
    let nr = 0;
    for (const m of local)
      if (doomed.has(m.id) && this.outbox.remove(m.id)) {
        nl++;
        this.log.info({ id: m.id, kind: m.kind, cam: m.cam }, 'retention: dropped from the outbox');
      }
    const sink = this.sink;
    if (sink)
      for (const b of remote) {
        if (!doomed.has(b.id)) continue;
        try {
          await sink.delete(b.id);
          this.uploaded.remove(b.id);
          nr++;
          this.log.info({ id: b.id, kind: b.kind, cam: b.cam }, 'retention: deleted from the server');
        } catch (e) {
          this.log.warn(
            { id: b.id, err: (e as Error).message },
            'retention: delete failed; trying again later',
          );
        }
      }
    return { local: nl, remote: nr };
  }

  /** Resolves when the recordings handed in so far are sealed and the outbox is drained (or no sink). */
  async idle(): Promise<void> {
    await this.chain;
    await this.uploader.idle();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.uploader.close();
  }
}

function splitEvery(b: Uint8Array, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out.length ? out : [b];
}
