/**
 * The home screen: the paired devices, each with its presence, its cameras (links to their live
 * views) or its refusal, and the rename/forget actions. Labels and camera names go in as text only.
 */
import { shortId } from '@hearth/protocol';
import { liveHref, logHref, peopleHref, timelineHref } from '../core/links.js';
import type { PairedDevice } from '../store/devices.js';
import type { DeviceDirectory } from '../store/directory.js';
import { h } from './dom.js';
import { pictureCanvas } from './picture.js';

/** What the tiles show besides the live state: the camera's latest verified picture, if known. */
export type TilePicture = (deviceId: string, camera: string) => Uint8Array | undefined;

/**
 * Build the screen; `changed` runs after a rename or forget has been stored; `picture` gives a
 * tile its camera's latest verified picture; `settings` (e.g. the notifications control) goes
 * below the list; `notices` (the recovery key just made at pairing) go above it.
 */
export function homeScreen(
  dir: DeviceDirectory,
  changed: () => void,
  picture?: TilePicture,
  settings?: Node,
  notices: readonly Node[] = [],
): HTMLElement {
  const list = h('ul', { class: 'devices', id: 'devices' });
  for (const d of dir.all()) list.append(deviceCard(dir, d, changed, picture));
  return h(
    'section',
    { class: 'screen home' },
    h('h1', {}, 'Your cameras'),
    ...notices,
    list,
    h('p', {}, h('a', { class: 'button', href: '#/pair', id: 'pair-another' }, '+ Pair a camera')),
    settings,
  );
}

function deviceCard(
  dir: DeviceDirectory,
  d: PairedDevice,
  changed: () => void,
  picture: TilePicture | undefined,
): HTMLElement {
  const online = dir.online(d.deviceId);
  const cams = dir.cameras(d.deviceId);
  const presence = online === undefined ? 'unknown' : online ? 'online' : 'offline';
  const camList = h('ul', { class: 'cams' });
  if (cams && 'list' in cams) {
    if (cams.list.length === 0) camList.append(h('li', { class: 'muted' }, 'No cameras configured.'));
    for (const c of cams.list) {
      const pic = picture?.(d.deviceId, c.name);
      camList.append(
        h(
          'li',
          {},
          h(
            'a',
            {
              class: `cam ${c.online ? 'on' : 'off'}`,
              href: liveHref(d.deviceId, c.name),
              'data-camera': c.name,
            },
            pic && pictureCanvas(pic, 'tile-picture'),
            h('span', { class: 'cam-name' }, c.name),
            h('span', { class: 'cam-state' }, c.online ? 'live' : 'no signal'),
          ),
          h(
            'a',
            { class: 'cam-events', href: timelineHref(d.deviceId, c.name), 'data-camera': c.name },
            'Events',
          ),
        ),
      );
    }
  } else if (cams && 'refused' in cams) {
    camList.append(
      d.role === 'invited'
        ? h('li', { class: 'muted' }, 'Waiting for the owner to approve.')
        : h('li', { class: 'refused' }, `Access refused (${cams.refused})`),
    );
  } else {
    camList.append(h('li', { class: 'muted' }, online === false ? 'Device offline.' : 'Loading cameras…'));
  }
  return h(
    'li',
    { class: 'card device', 'data-device': d.deviceId, 'data-presence': presence },
    h(
      'div',
      { class: 'device-head' },
      h('span', { class: `dot ${presence}`, title: presence, 'aria-label': presence }),
      h('strong', { class: 'device-label' }, d.label),
      h('span', { class: 'role' }, d.role),
    ),
    h('div', { class: 'device-id muted' }, h('code', {}, shortId(d.deviceId)), ` · ${presence}`),
    camList,
    d.role === 'owner'
      ? h(
          'p',
          { class: 'owner-links' },
          h('a', { href: peopleHref(d.deviceId), class: 'people-link' }, 'People'),
          ' · ',
          h('a', { href: logHref(d.deviceId), class: 'log-link' }, 'Access log'),
        )
      : null,
    h(
      'details',
      { class: 'manage' },
      h('summary', {}, 'Manage'),
      h(
        'button',
        {
          type: 'button',
          onclick: () => {
            const name = prompt('Name for this device (stays on this phone)', d.label);
            if (name?.trim()) void dir.rename(d.deviceId, name.trim()).then(changed);
          },
        },
        'Rename',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          onclick: () => {
            if (confirm(`Forget ${d.label} on this phone? You will need to pair again.`))
              void dir.forget(d.deviceId).then(changed);
          },
        },
        'Forget',
      ),
    ),
  );
}
