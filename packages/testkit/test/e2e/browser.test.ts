// Chromium inside the viewer's namespace loads a page from the server namespace through the viewer's
// NAT, and gathers only lab addresses as WebRTC candidates. Needs root, ip, nft and /usr/bin/chromium.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chromiumAvailable, launchChromium, NatLab, OUTSIDE_IP, startReflector } from '@hearth/testkit';
import { namespacesWithPrefix, pidAlive } from './helpers.js';

const lab0 = await NatLab.available();
const chr = await chromiumAvailable();
const skip = !lab0.ok ? lab0.reason : !chr.ok ? chr.reason : false;

test('chromium in the viewer namespace loads a page from the server by lab IP', {
  skip,
  timeout: 90_000,
}, async (t) => {
  const lab = await NatLab.create('bothEim');
  let browserPid: number | undefined;
  try {
    const marker = `hearth-lab-${lab.prefix}`;
    const refl = await startReflector(lab, lab.hosts.server, { httpPort: 8080, httpBody: marker });
    const t0 = Date.now();
    const chromium = await launchChromium({
      netns: lab.hosts.viewer.netns,
      // Raw IPs instead of mDNS names in host candidates, so the test can check them.
      args: ['--disable-features=WebRtcHideLocalIpsWithMdns'],
    });
    browserPid = chromium.pid;
    t.diagnostic(`chromium up in ${Date.now() - t0} ms (pid ${browserPid})`);
    try {
      assert.ok(browserPid && pidAlive(browserPid));
      const page = await chromium.newPage();
      const res = await page.goto(`http://${refl.ip}:${refl.httpPort}/`, { timeout: 15_000 });
      assert.equal(res?.status(), 200);
      assert.equal(await page.textContent('#body'), marker);
      // The server sees the viewer's NAT, not the viewer.
      assert.equal(await page.textContent('#remote'), lab.routers.vnat?.wanIp);

      await t.test('WebRTC gathers only the viewer host address', async (st) => {
        const g0 = Date.now();
        const cands = await page.evaluate(async () => {
          const pc = new RTCPeerConnection();
          pc.createDataChannel('probe');
          const found: string[] = [];
          const done = new Promise<void>((resolve) => {
            pc.onicecandidate = (e) => {
              if (e.candidate) found.push(e.candidate.candidate);
              else resolve();
            };
            setTimeout(resolve, 5000);
          });
          await pc.setLocalDescription(await pc.createOffer());
          await done;
          pc.close();
          return found;
        });
        st.diagnostic(`gathered in ${Date.now() - g0} ms: ${cands.join(' | ')}`);
        assert.ok(cands.length > 0, 'no candidates');
        for (const c of cands) {
          const addr = c.split(' ')[4];
          assert.equal(addr, lab.hosts.viewer.ip, `unexpected candidate ${c}`);
        }
      });

      await t.test('nothing outside the lab is reachable', async () => {
        const other = await chromium.newPage();
        await assert.rejects(other.goto(`http://${OUTSIDE_IP}/`, { timeout: 1500 }));
        await other.close();
      });
    } finally {
      await chromium.close();
    }
    assert.ok(browserPid !== undefined && !pidAlive(browserPid), 'browser process survived close()');
  } finally {
    await lab.destroy();
  }
  assert.deepEqual(namespacesWithPrefix(lab.prefix), []);
});
