/**
 * Test harness for the viewer in a real Chromium: the real Hearth server (`@hearth/server/testing`:
 * the real hub, and the viewer's dist/ served with the production headers) on 127.0.0.1, and
 * devices that the test scripts, each a real rendezvous client that authenticates with its own
 * device key and speaks through the sealed channel. Loopback only.
 */
import { fileURLToPath } from 'node:url';
import { DeviceChannels, type IceServer, type Signer, systemEnv } from '@hearth/protocol';
import { startTestHub, type TestHub, type TestHubFrame, type TestPeer } from '@hearth/server/testing';
import { webRoot } from '@hearth/viewer';

export const DIST = fileURLToPath(webRoot);

/** A scripted device: receives what a viewer sends it, answers through `reply`. */
export type FakeDevice = (
  m: { t: string; [k: string]: unknown },
  reply: (m: unknown) => void,
  from: string,
) => void | Promise<void>;

export interface Harness {
  url: string;
  /** Connect a device with its key (online unless told otherwise); resolves with its ID. */
  device(signer: Signer, handler: FakeDevice, online?: boolean): Promise<string>;
  /** Connect or disconnect a device: the hub reports its presence to the viewers watching it. */
  setOnline(id: string, online: boolean): Promise<void>;
  /** Every frame the hub received, with its authenticated sender. */
  log: TestHubFrame[];
  /** IDs the hub authenticated. */
  authenticated: string[];
  ice: IceServer[];
  hub: TestHub;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const hub = await startTestHub({ webRoot: DIST });
  const devices = new Map<string, TestPeer>();
  return {
    url: hub.url,
    async device(signer, handler, online = true) {
      const peer = await hub.peer(signer, 'device');
      // It speaks through the sealed channel as a real agent does (protocol DeviceChannels): the
      // handler sees and answers plaintext messages; pairing passes in clear.
      const channels = new DeviceChannels({
        signer,
        deviceId: peer.id,
        env: systemEnv,
        route: (to, m) => peer.sendTo(to, m),
      });
      peer.core.on('recv', (f) => {
        void (async () => {
          const r = await channels.receive(f.from, f.m);
          if (r.kind === 'pair') await handler(r.m, (out) => peer.sendTo(f.from, out), f.from);
          else if (r.kind === 'message')
            await handler(r.m, (out) => void channels.send(f.from, out as never, r.channel), f.from);
        })().catch((e) => console.error('fake device handler failed', e));
      });
      // A scripted device grants every viewer that connects: it names them all in its allow list
      // (presence follows that list, review R5d), now and on each new viewer; the hub keeps the list
      // across the device's reconnects.
      const allowAll = () =>
        peer.core.send({
          t: 'allow',
          k: [...new Set(hub.authenticated.filter((x) => x.startsWith('huk_')))].slice(-1024),
        });
      hub.onAuthenticated((x) => x.startsWith('huk_') && allowAll());
      allowAll();
      devices.set(peer.id, peer);
      if (!online) peer.stop();
      return peer.id;
    },
    async setOnline(id, online) {
      const p = devices.get(id);
      if (!p) throw new Error(`no such device ${id}`);
      if (online) {
        p.start();
        await p.whenReady();
      } else p.stop();
    },
    log: hub.frames,
    authenticated: hub.authenticated,
    get ice() {
      return hub.ice;
    },
    hub,
    close: () => hub.close(),
  };
}
