/**
 * Error and attack states outside a screen's own status line: the page-wide alarm (the `alarm`
 * class on <html>, red chrome while the live view says "possible attack"), the app-level error the
 * test hook reports, and the notice for a link to a device this browser has not paired with.
 */
import { h } from './dom.js';

/** An error outside the live view (pairing, the server, a sealed channel that failed a check). */
export interface AppError {
  code: string;
  message: string;
}

/** What the hook reports for a sealed-channel message that failed a check. */
export function channelAttack(code: string): AppError {
  return { code, message: 'possible attack' };
}

/** Turn the page-wide alarm on or off. */
export function setAlarm(on: boolean): void {
  document.documentElement.classList.toggle('alarm', on);
}

/** A live link to a device that is not paired here: nothing to show, only a way to pair it. */
export function notPairedScreen(): HTMLElement {
  return h(
    'section',
    { class: 'screen' },
    h('p', {}, 'This device is not paired on this phone. '),
    h('a', { href: '#/pair' }, 'Pair it'),
  );
}
