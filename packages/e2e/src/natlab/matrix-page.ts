/**
 * The page the NAT matrix loads in Chromium, served by the matrix server (`matrix-server.ts`) from the
 * lab's public namespace. Two roles, driven with `page.evaluate`:
 *
 * - `runViewer({ run, policy, timeoutMs })`: a viewer, as the Hearth viewer does it: a recvonly video
 *   offer with the server's STUN and TURN (UDP and TCP) and per-session TURN REST credentials, sent
 *   non-trickle through the server's mailbox; applies the answer; reports the selected candidate pair
 *   (getStats) and the time from "view" to the first decoded frame (requestVideoFrameCallback).
 * - `runSender({ run, timeoutMs })`: the Chromium-to-Chromium baseline's camera side: takes the offer,
 *   answers sendonly with a canvas track, same ICE servers.
 */
export const MATRIX_PAGE = `<!doctype html><meta charset="utf-8"><title>hearth nat matrix</title>
<body><script>
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pcs = [];
async function creds(id) {
  const r = await fetch('/creds?id=' + encodeURIComponent(id));
  if (!r.ok) throw new Error('creds ' + r.status);
  return r.json();
}
const iceServers = (c) => [{ urls: c.stun }, { urls: c.turn, username: c.username, credential: c.password }];
async function put(name, obj) {
  const r = await fetch('/box/' + name, { method: 'POST', body: JSON.stringify(obj) });
  if (!r.ok) throw new Error('put ' + name + ' ' + r.status);
}
async function take(name, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await fetch('/box/' + name);
    if (r.status === 200) return r.json();
  }
  throw new Error('timed out waiting for ' + name);
}
// Non-trickle: wait for gathering to complete, or 400 ms after the first relay candidate, at most capMs
// (a TCP-only network never answers UDP STUN, and Chromium would keep gathering for a long time).
function gathered(pc, capMs) {
  return new Promise((resolve) => {
    let t;
    const done = () => { clearTimeout(cap); clearTimeout(t); resolve(); };
    const cap = setTimeout(done, capMs);
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') done(); });
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate && / typ relay /.test(e.candidate.candidate) && t === undefined) t = setTimeout(done, 400);
    });
  });
}
async function selectedPair(pc) {
  const st = await pc.getStats();
  const by = new Map();
  let pairId;
  st.forEach((r) => { by.set(r.id, r); if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId; });
  if (!pairId) st.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pairId = r.id; });
  const p = by.get(pairId);
  if (!p) return null;
  const c = (x) => x ? { type: x.candidateType, protocol: x.protocol, relayProtocol: x.relayProtocol || null, address: x.address || x.ip || null, port: x.port } : null;
  return { local: c(by.get(p.localCandidateId)), remote: c(by.get(p.remoteCandidateId)) };
}
const candTypes = (sdp) => sdp.split('\\r\\n').filter((l) => l.startsWith('a=candidate:')).map((l) => { const f = l.split(' '); return f[7] + '/' + f[2].toLowerCase() + '/' + f[4]; });

window.runViewer = async ({ run, policy, timeoutMs, settleMs }) => {
  const c = await creds('viewer-' + run);
  const t0 = performance.now();
  const pc = new RTCPeerConnection({ iceServers: iceServers(c), iceTransportPolicy: policy || 'all' });
  pcs.push(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  let connectedMs = null;
  const connected = new Promise((res) => pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'connected') { if (connectedMs === null) connectedMs = performance.now() - t0; res(true); }
    if (pc.connectionState === 'failed') res(false);
  }));
  const firstFrame = new Promise((res) => {
    pc.ontrack = (ev) => {
      const v = document.createElement('video');
      v.muted = true; v.autoplay = true; v.playsInline = true; v.width = 160;
      v.srcObject = new MediaStream([ev.track]);
      document.body.appendChild(v);
      v.play().catch(() => {});
      v.requestVideoFrameCallback((now, meta) => res({ t: performance.now() - t0, w: meta.width, h: meta.height }));
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc, 5000);
  const gatherMs = performance.now() - t0;
  const offer = pc.localDescription.sdp;
  await put('offer-' + run, { type: 'offer', sdp: offer });
  const ans = await take('answer-' + run, timeoutMs);
  await pc.setRemoteDescription(ans);
  const signalMs = performance.now() - t0;
  const ff = await Promise.race([
    firstFrame,
    connected.then((ok) => (ok ? firstFrame : null)),
    sleep(timeoutMs).then(() => null),
  ]);
  const firstPair = await selectedPair(pc);
  // ICE keeps checking after the first pair works and may switch to a better (direct) one: poll up to
  // settleMs, stopping as soon as the selected pair is direct.
  const isRelay = (p) => !p || !p.local || !p.remote || p.local.type === 'relay' || p.remote.type === 'relay';
  let pair = firstPair;
  const settleEnd = performance.now() + (ff ? settleMs || 0 : 0);
  while (isRelay(pair) && performance.now() < settleEnd) { await sleep(250); pair = await selectedPair(pc); }
  let framesDecoded = 0;
  (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') framesDecoded = r.framesDecoded || 0; });
  return {
    connected: pc.connectionState === 'connected', state: pc.connectionState,
    ttffMs: ff ? ff.t : null, width: ff ? ff.w : null, height: ff ? ff.h : null,
    connectedMs, gatherMs, signalMs, framesDecoded, firstPair, pair,
    localCandidates: candTypes(offer), remoteCandidates: candTypes(ans.sdp),
  };
};

window.runSender = async ({ run, timeoutMs }) => {
  const c = await creds('sender-' + run);
  const canvas = document.createElement('canvas');
  canvas.width = 320; canvas.height = 180;
  const ctx = canvas.getContext('2d');
  let f = 0;
  setInterval(() => { f++; ctx.fillStyle = 'hsl(' + ((f * 7) % 360) + ',80%,50%)'; ctx.fillRect(0, 0, 320, 180); ctx.fillStyle = '#fff'; ctx.fillText(String(f), 10, 20); }, 66);
  const track = canvas.captureStream(15).getVideoTracks()[0];
  const offer = await take('offer-' + run, timeoutMs);
  const pc = new RTCPeerConnection({ iceServers: iceServers(c) });
  pcs.push(pc);
  await pc.setRemoteDescription(offer);
  const tr = pc.getTransceivers()[0];
  tr.direction = 'sendonly';
  await tr.sender.replaceTrack(track);
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc, 5000);
  await put('answer-' + run, { type: 'answer', sdp: pc.localDescription.sdp });
  const end = Date.now() + timeoutMs;
  while (pc.connectionState !== 'connected' && pc.connectionState !== 'failed' && Date.now() < end) await sleep(50);
  return { connected: pc.connectionState === 'connected', state: pc.connectionState, pair: await selectedPair(pc) };
};

window.closeAll = () => { for (const pc of pcs) pc.close(); pcs.length = 0; };
</script></body>`;
