/**
 * Streaming playback of a sealed clip through Media Source Extensions. The sealed bytes are read as
 * they arrive; the header is verified (pinned device key, device, camera, clip ID) and unwrapped
 * with our reader key; each chunk is opened by protocol's BlobOpener and its plaintext (fMP4: the
 * init segment, then fragments) appended to a SourceBuffer whose codec string comes from the init
 * segment itself.
 *
 * What plays before the end is UNCONFIRMED: every chunk authenticates on its own, but only the last
 * proves that the chunks are the ones the device signed (any other reader of the clip knows its
 * content key and could forge a chunk). The state says so until the opener confirms the last chunk;
 * a chunk that does not authenticate or a digest that does not match (E_CLIP_CHUNK, E_CLIP_DIGEST),
 * a truncated stream (E_CLIP_TRUNCATED), or a header that fails a check stops playback at once,
 * clears the picture and drops the plaintext: possible attack. The file can only be downloaded
 * once confirmed.
 */
import {
  type BlobOpener,
  clipHeaderLength,
  concat,
  openBlobHeader,
  ProtocolError,
  VerificationError,
} from '@hearth/protocol';
import { initSegmentLength, mimeOfInit } from '../core/mp4.js';
import { type BlobContext, describeFailure } from './open.js';

export type PlayerState =
  | { name: 'loading' }
  /** Playing as it arrives; not yet proven to be the device's clip. */
  | { name: 'unconfirmed'; chunks: number; of: number }
  /** The last chunk opened and the digest matched: every byte played is the device's. */
  | { name: 'confirmed' }
  | { name: 'failed'; code: string; attack: boolean; message: string };

export interface PlayerOptions {
  ctx: BlobContext;
  id: string;
  camera: string;
  onState(s: PlayerState): void;
}

/** Plays one clip into a `<video>`; `stop()` ends it and frees everything. */
export class ClipPlayer {
  private stopped = false;
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private ms: MediaSource | undefined;
  private sb: SourceBuffer | undefined;
  private url: string | undefined;
  private plain: Uint8Array[] = [];
  private init: Uint8Array[] = [];
  private appending: Promise<void> = Promise.resolve();
  private dlUrl: string | undefined;
  state: PlayerState = { name: 'loading' };
  /** Clip start time, from the verified header. */
  t0 = 0;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly o: PlayerOptions,
  ) {}

  private set(s: PlayerState): void {
    if (this.stopped && s.name !== 'failed') return;
    this.state = s;
    this.o.onState(s);
  }

  /** Fetch, verify and play. Resolves when the clip is confirmed or has failed. */
  async start(): Promise<void> {
    this.set({ name: 'loading' });
    try {
      await this.run();
    } catch (e) {
      if (this.stopped) return;
      this.fail(e);
    }
  }

  private async run(): Promise<void> {
    const { ctx, id, camera } = this.o;
    const stream = await ctx.api.fetchBlob(ctx.dev, id);
    const reader = stream.getReader();
    this.reader = reader;
    // 1. The header: buffer until its length is known and it is all there.
    let buf: Uint8Array = new Uint8Array(0);
    let size: number | undefined;
    while (size === undefined || buf.length < size) {
      const { done, value } = await reader.read();
      if (done) throw new VerificationError('E_CLIP_TRUNCATED', 'clip: the stream ended in the header');
      buf = concat(buf, value);
      size = clipHeaderLength(buf);
    }
    const { opener, size: hs } = await openBlobHeader(buf, {
      pinnedDeviceKey: ctx.pinnedDeviceKey,
      deviceId: ctx.dev,
      camera,
      reader: ctx.reader,
    });
    if (opener.header.kind !== 'clip' || opener.header.id !== id)
      throw new VerificationError('E_BAD_BINDING', 'blob is not the clip it was listed as');
    this.t0 = opener.meta.t0;
    const of = opener.header.n;
    this.set({ name: 'unconfirmed', chunks: 0, of });
    // 2. The chunks, as they arrive.
    await this.feed(opener, buf.subarray(hs));
    for (;;) {
      const { done, value } = await reader.read();
      if (this.stopped) return;
      if (done) break;
      await this.feed(opener, value);
    }
    opener.finish(); // E_CLIP_TRUNCATED unless the last chunk came and matched
    await this.appending;
    if (this.stopped) return;
    if (this.ms?.readyState === 'open') this.ms.endOfStream();
    if (!this.sb) throw new ProtocolError('E_MEDIA', 'clip: no init segment');
    this.set({ name: 'confirmed' });
  }

  private async feed(opener: BlobOpener, bytes: Uint8Array): Promise<void> {
    const chunks = await opener.push(bytes);
    if (this.stopped) return;
    for (const c of chunks) {
      this.plain.push(c);
      if (this.sb) this.append(c);
      else await this.tryInit(c);
    }
    if (chunks.length && !opener.done)
      this.set({ name: 'unconfirmed', chunks: this.plain.length, of: opener.header.n });
  }

  /** Collect plaintext until the init segment is whole; then open the MediaSource with its codec. */
  private async tryInit(c: Uint8Array): Promise<void> {
    this.init.push(c);
    const all = concat(...this.init);
    const n = initSegmentLength(all);
    if (n === undefined) {
      if (all.length > 1024 * 1024)
        throw new ProtocolError('E_MEDIA', 'clip: no init segment in the first MiB');
      return;
    }
    const mime = mimeOfInit(all.subarray(0, n));
    if (!mime || !globalThis.MediaSource?.isTypeSupported(mime))
      throw new ProtocolError('E_MEDIA', `clip: this browser cannot play ${mime ?? 'this codec'}`);
    this.init = [];
    const ms = new MediaSource();
    this.ms = ms;
    this.url = URL.createObjectURL(ms);
    const opened = new Promise<void>((resolve) =>
      ms.addEventListener('sourceopen', () => resolve(), { once: true }),
    );
    this.video.src = this.url;
    await opened;
    if (this.stopped) return;
    this.sb = ms.addSourceBuffer(mime);
    this.append(all);
    void this.video.play().catch(() => undefined);
  }

  /** Queue one append (a SourceBuffer takes one at a time). */
  private append(b: Uint8Array): void {
    const sb = this.sb!;
    this.appending = this.appending.then(
      () =>
        new Promise<void>((resolve, reject) => {
          if (this.stopped) return resolve();
          const done = () => {
            sb.removeEventListener('updateend', done);
            sb.removeEventListener('error', bad);
            resolve();
          };
          const bad = () => {
            sb.removeEventListener('updateend', done);
            sb.removeEventListener('error', bad);
            reject(new ProtocolError('E_MEDIA', 'clip: the browser could not decode a fragment'));
          };
          sb.addEventListener('updateend', done);
          sb.addEventListener('error', bad);
          sb.appendBuffer(b as Uint8Array<ArrayBuffer>);
        }),
    );
    this.appending.catch((e) => this.fail(e));
  }

  private fail(e: unknown): void {
    if (this.state.name === 'failed') return;
    const f = describeFailure(e);
    this.teardown();
    this.set({ name: 'failed', ...f });
  }

  /** The decrypted file (`video/mp4`) as an object URL: only once confirmed. */
  fileUrl(): string | undefined {
    if (this.state.name !== 'confirmed') return undefined;
    this.dlUrl ??= URL.createObjectURL(new Blob(this.plain as BlobPart[], { type: 'video/mp4' }));
    return this.dlUrl;
  }

  private teardown(): void {
    this.stopped = true;
    void this.reader?.cancel().catch(() => undefined);
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
    if (this.url) URL.revokeObjectURL(this.url);
    if (this.dlUrl) URL.revokeObjectURL(this.dlUrl);
    this.plain = [];
    this.init = [];
    this.sb = undefined;
    this.ms = undefined;
  }

  /** The user left: stop and free everything. */
  stop(): void {
    this.teardown();
  }
}
