/**
 * ChannelData framing (RFC 8656 §12.4):
 *  |         Channel Number        |            Length             |
 *  |                       Application Data                        |
 * Over TCP/TLS the frame is padded to a multiple of 4 bytes; over UDP padding is optional.
 */
import { CHANNEL_MAX, CHANNEL_MIN } from './constants.js';
import { StunDecodeError, StunEncodeError } from './errors.js';

/** A decoded ChannelData frame; `data` is a view into the input. */
export interface ChannelData {
  readonly channel: number;
  readonly data: Uint8Array;
  /** Bytes the frame occupies including padding (stream framing). */
  readonly frameSize: number;
}

/** True when the first byte marks a ChannelData frame (top bits 01). */
export function isChannelData(buf: Uint8Array): boolean {
  return buf.length >= 4 && (buf[0]! & 0xc0) === 0x40;
}

/**
 * Decodes one ChannelData frame at the start of `buf`. With `stream` the padded frame must fit
 * (TCP); otherwise trailing bytes up to the padding are tolerated (UDP). Throws only StunDecodeError.
 */
export function decodeChannelData(buf: Uint8Array, options: { stream?: boolean } = {}): ChannelData {
  if (buf.length < 4) throw new StunDecodeError('ChannelData shorter than header', 'E_CHANNEL_DECODE');
  const channel = (buf[0]! << 8) | buf[1]!;
  if (channel < CHANNEL_MIN || channel > CHANNEL_MAX) {
    throw new StunDecodeError('channel number out of range', 'E_CHANNEL_DECODE');
  }
  const len = (buf[2]! << 8) | buf[3]!;
  const padded = (len + 3) & ~3;
  if (options.stream) {
    if (buf.length < 4 + padded) throw new StunDecodeError('ChannelData truncated', 'E_CHANNEL_DECODE');
  } else if (buf.length < 4 + len || buf.length > 4 + padded) {
    throw new StunDecodeError('ChannelData length mismatch', 'E_CHANNEL_DECODE');
  }
  return {
    channel,
    data: buf.subarray(4, 4 + len),
    frameSize: 4 + (options.stream ? padded : buf.length - 4),
  };
}

/** Encodes a ChannelData frame; `pad` rounds it up to 4 bytes (required over TCP/TLS). */
export function encodeChannelData(
  channel: number,
  data: Uint8Array,
  options: { pad?: boolean } = {},
): Uint8Array {
  if (!Number.isInteger(channel) || channel < CHANNEL_MIN || channel > CHANNEL_MAX) {
    throw new StunEncodeError('channel number out of range');
  }
  if (data.length > 0xffff) throw new StunEncodeError('ChannelData too long');
  const size = 4 + (options.pad ? (data.length + 3) & ~3 : data.length);
  const out = new Uint8Array(size);
  out[0] = channel >> 8;
  out[1] = channel & 0xff;
  out[2] = data.length >> 8;
  out[3] = data.length & 0xff;
  out.set(data, 4);
  return out;
}

/**
 * Stream framing (TURN over TCP/TLS): size of the frame starting at `buf[offset]`, or -1 when more
 * bytes are needed to tell. Throws StunDecodeError when the bytes cannot start a STUN or ChannelData frame.
 */
export function streamFrameSize(buf: Uint8Array, offset = 0): number {
  if (buf.length - offset < 4) return -1;
  const b0 = buf[offset]!;
  const len = (buf[offset + 2]! << 8) | buf[offset + 3]!;
  if ((b0 & 0xc0) === 0x40) {
    return 4 + ((len + 3) & ~3);
  }
  if ((b0 & 0xc0) === 0) {
    if ((len & 3) !== 0) throw new StunDecodeError('length not a multiple of 4');
    return 20 + len;
  }
  throw new StunDecodeError('neither STUN nor ChannelData');
}
