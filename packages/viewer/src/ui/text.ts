/** User-visible text for errors and states, in one place. No secrets, no raw server text. */
import type { ViewState } from '../core/view-state.js';

/** Why pairing stopped. */
export type PairFailureReason =
  | 'bad-input'
  | 'not-found'
  | 'offline'
  | 'wrong-code'
  | 'locked'
  | 'wait'
  | 'closed'
  | 'timeout'
  | 'attack'
  | 'no-server'
  | 'failed';

/** The sentence shown for a pairing failure. */
export function pairFailureText(reason: PairFailureReason, attemptsLeft?: number, code?: string): string {
  switch (reason) {
    case 'bad-input':
      return 'That is not a Hearth pairing code. It has 13 letters and digits, like ABCD-EFGH-JKMNP, shown by the camera agent.';
    case 'not-found':
      return 'No device is waiting for this code. Open pairing on the device (the window may have closed) and check that it is online.';
    case 'offline':
      return 'The device is offline. Check that it is powered and connected, then try again.';
    case 'wrong-code':
      return attemptsLeft === undefined
        ? 'Code not accepted. Check the code and try again.'
        : `Code not accepted — ${attemptsLeft} attempt${attemptsLeft === 1 ? '' : 's'} left.`;
    case 'locked':
      return 'Too many wrong codes: the device has locked pairing. Re-open pairing on the device itself.';
    case 'wait':
      return 'Too many attempts in a row: wait a minute before the next one.';
    case 'closed':
      return 'The pairing window on this device is closed. Re-open it on the device, or ask its owner to invite you.';
    case 'timeout':
      return 'The device did not answer in time. Try again.';
    case 'attack':
      return `Possible attack: the device failed a security check${code ? ` (${code})` : ''}. Nothing was saved.`;
    case 'no-server':
      return 'Cannot reach the Hearth server. Check your connection; it will keep trying.';
    case 'failed':
      return `Pairing failed${code ? ` (${code})` : ''}. Try again.`;
  }
}

/** One-line explanation under the status line of a live view. */
export function viewStateHint(s: ViewState): string {
  switch (s.name) {
    case 'idle':
      return '';
    case 'connecting':
      return 'Setting up an end-to-end encrypted session with the device.';
    case 'connected (direct)':
      return 'End-to-end encrypted, straight to the device.';
    case 'connected (relayed)':
      return 'End-to-end encrypted, through the relay (it cannot see the video).';
    case 'reconnecting':
      return 'The connection dropped. Trying again.';
    case 'device offline':
      return 'The device is not connected to the server. The view resumes when it is back.';
    case 'camera offline':
      return 'Camera offline: the device is online, but this camera is not sending video (unplugged, unreachable or restarting). Trying again.';
    case 'camera unavailable':
      if (s.code === 'E_NO_H264')
        return 'This browser does not offer H.264 video, which the camera sends. Try another browser (Chrome, Firefox, Safari and Edge all play it).';
      return s.code === 'E_CAMERA_UNAVAILABLE'
        ? 'The camera could not start: the device cannot run ffmpeg, which Hearth needs for video. Install it on the device (Debian/Ubuntu: sudo apt install ffmpeg), then press Try again.'
        : `The camera could not start: the device could not set up its video${s.code ? ` (${s.code})` : ''}. Press Try again; if it happens again, the device's log says why.`;
    case 'access refused':
      return s.code === 'E_GRANT_REVOKED'
        ? 'Your access to this device was revoked by its owner.'
        : s.code === 'E_GRANT_EXPIRED'
          ? 'Your access to this device has expired.'
          : 'The device did not allow this view.';
    case 'possible attack':
      return 'The answer did not come from the device you paired with (its signature or its encryption certificate did not match). The connection was closed and no video was played. If this repeats, your network or the server may be compromised.';
  }
}

/** The sentence for a household request the device refused (or that got no answer). */
export function householdErrorText(code: string): string {
  switch (code) {
    case 'E_OFFLINE':
      return 'The device is not reachable right now. Check that it is online, then try again.';
    case 'E_TIMEOUT':
      return 'The device did not answer in time. Try again.';
    case 'E_NO_GRANT':
    case 'E_WRONG_SIGNER':
      return 'Only an owner of this device can do this.';
    case 'E_STALE_ACL':
      return 'The list changed on another device meanwhile. Check it, then try again.';
    case 'E_RATE_LIMITED':
      return 'Too many attempts: wait a while, then try again.';
    case 'E_LAST_OWNER':
      return 'A device keeps at least one owner: make someone else an owner first.';
    case 'E_INVITE_UNKNOWN':
      return 'The device does not know this invite. Check the link, or ask for a new one.';
    case 'E_INVITE_EXPIRED':
      return 'This invite has expired. Ask for a new one.';
    case 'E_INVITE_USED':
      return 'This invite was already used. An invite works once: ask for a new one.';
    default:
      return `The device refused (${code}).`;
  }
}
