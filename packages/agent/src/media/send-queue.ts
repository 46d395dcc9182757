/**
 * One viewer's queue of access units between the camera and its WebRTC sender: it starts with the
 * cached GOP (from its keyframe), drops what is useless (frames before a keyframe, a backlog that
 * grew past its budget) and, once the transport is open, sends the backlog paced, then live units
 * as they come. Every peer implementation (libdatachannel's, and werift's in the tests) sends
 * through one of these, so they differ only in the transport.
 *
 * Invariant: the queue starts at a keyframe, or is empty while gated (waiting for one).
 */
import type { AccessUnit, GopSnapshot } from './annexb.js';

export interface SendQueueOptions {
  /** Pace of the backlog (GOP replay), bits per second. Default 40 Mbit/s. */
  readonly replayBitrate?: number;
  /** Start from the cached GOP (default true). False waits for the camera's next keyframe. */
  readonly replayCache?: boolean;
  /** Max bytes queued before the viewer is resynchronised at the next keyframe. Default 8 MiB. */
  readonly maxQueueBytes?: number;
  /** Hands one access unit to the transport; `replayed` while it comes from the cached GOP. */
  readonly send: (au: AccessUnit, replayed: boolean) => void;
}

export class SendQueue {
  /** Frames never sent (superseded by a keyframe, over budget, or after a source restart). */
  framesDropped = 0;
  /** Frames of the cached GOP that were sent. */
  replayedFrames = 0;
  private queue: AccessUnit[] = [];
  private queueBytes = 0;
  private gated = true;
  /** The queued GOP was truncated: after its keyframe, drop until the next keyframe. */
  private skipToKey = false;
  private open = false;
  private closed = false;
  private pumping = false;
  private pendingReplay = 0;

  constructor(private readonly o: SendQueueOptions) {}

  /** Frames of the cached GOP still waiting to be sent. */
  get replayPending(): number {
    return this.pendingReplay;
  }

  /** Loads the cached GOP; call before `push`ing live units. */
  start(snapshot: GopSnapshot): void {
    if (this.o.replayCache === false) return;
    this.pendingReplay = snapshot.units.length;
    for (const au of snapshot.units) this.push(au);
    if (snapshot.truncated && snapshot.units.length > 0) this.skipToKey = true;
  }

  /** Offers one access unit (live or replayed). */
  push(au: AccessUnit): void {
    if (this.closed) return;
    if (au.keyframe) {
      this.gated = false;
      this.skipToKey = false;
      if (!this.open || this.queue.length === 0) {
        // Not sending yet (or idle): a keyframe makes everything queued before it useless.
        this.framesDropped += this.queue.length;
        this.queue = [au];
        this.queueBytes = au.bytes;
        if (this.open) void this.pump();
        return;
      }
    } else if (this.gated || this.skipToKey) {
      this.framesDropped++;
      return;
    }
    const max = this.o.maxQueueBytes ?? 8 * 1024 * 1024;
    if (this.queueBytes + au.bytes > max) {
      // The viewer cannot keep up or the GOP is huge: keep only the keyframe, resync at the next one.
      if (!this.open && this.queue[0]?.keyframe) {
        this.framesDropped += this.queue.length;
        this.queue = this.queue.slice(0, 1);
        this.queueBytes = this.queue[0]?.bytes ?? 0;
        this.skipToKey = true;
      } else {
        this.framesDropped += this.queue.length + 1;
        this.queue = [];
        this.queueBytes = 0;
        this.gated = true;
      }
      return;
    }
    this.queue.push(au);
    this.queueBytes += au.bytes;
    if (this.open) void this.pump();
  }

  /** The source restarted (new ffmpeg): drop what is queued and wait for its first keyframe. */
  resync(): void {
    this.framesDropped += this.queue.length;
    this.queue = [];
    this.queueBytes = 0;
    this.gated = true;
  }

  /** The transport is up: send the backlog, then live units as they come. */
  opened(): void {
    this.open = true;
    void this.pump();
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.queueBytes = 0;
  }

  private async pump(): Promise<void> {
    if (this.pumping || !this.open || this.closed) return;
    this.pumping = true;
    try {
      const bitrate = this.o.replayBitrate ?? 40_000_000;
      const start = performance.now();
      let sentBytes = 0;
      while (this.queue.length > 0 && !this.closed) {
        const au = this.queue.shift() as AccessUnit;
        this.queueBytes -= au.bytes;
        const backlog = this.queue.length > 0;
        const replayed = this.pendingReplay > 0;
        this.o.send(au, replayed);
        if (replayed) {
          this.pendingReplay--;
          this.replayedFrames++;
        }
        sentBytes += au.bytes;
        if (backlog) {
          // Pace the catch-up so the browser's socket buffer is not flooded.
          const due = start + (sentBytes * 8 * 1000) / bitrate;
          const wait = due - performance.now();
          await new Promise((r) => (wait > 1 ? setTimeout(r, wait) : setImmediate(r)));
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
