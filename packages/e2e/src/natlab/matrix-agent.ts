/**
 * The NAT matrix's camera side, run inside the lab's `agent` namespace: a Hearth `MediaHub` (ffmpeg
 * testsrc → H.264 → werift) answers one viewer offer taken from the matrix server's mailbox, with the
 * server's STUN and TURN (UDP) and TURN REST credentials from `/creds`. With `--warm 1` the camera's
 * ffmpeg is started (and its first keyframe awaited) before the offer, as for a camera someone already
 * watches; otherwise it starts on the offer (cold), as for a camera nobody watches.
 *
 *   node [--conditions=source --import tsx] matrix-agent.ts --server http://203.0.113.1:8080 --run ID
 *        [--policy all|relay] [--timeout MS] [--warm 1]
 *
 * Prints JSON lines: {"event":"answered"}, then {"event":"result", state, pair, stats} once the first
 * frame was sent (or the timeout passed). Runs until SIGTERM (closes the hub, stops ffmpeg).
 */
import { type IceServerConfig, MediaHub, parseCamerasYaml, type ViewerSession } from '@hearth/agent';
import { childFlags } from '@hearth/testkit';

const f = childFlags(process.argv.slice(2));
const server = f.server ?? 'http://203.0.113.1:8080';
const run = f.run ?? '';
if (!/^[A-Za-z0-9_.-]{1,60}$/.test(run)) throw new Error('bad --run');
const policy = f.policy === 'relay' ? 'relay' : 'all';
const timeoutMs = Number(f.timeout ?? 20_000);
const warm = f.warm === '1';
const out = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

// --warm 0 measures a cold camera: on-demand, so nothing runs before the first view.
const hub = new MediaHub(
  parseCamerasYaml(
    `cameras:\n  cam:\n    source: testsrc?size=640x360&fps=15&gop=2\n    mode: ${warm ? 'warm' : 'on-demand'}\n`,
  ),
  {
    // Only the lab interface: no loopback candidate.
    peer: { iceTransportPolicy: policy },
  },
);
let session: ViewerSession | undefined;

async function stop(): Promise<void> {
  await Promise.race([hub.close(), new Promise((r) => setTimeout(r, 2000))]);
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

async function take(name: string): Promise<string> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await fetch(`${server}/box/${name}`);
    if (r.status === 200) return r.text();
    await r.arrayBuffer();
  }
  throw new Error(`timed out waiting for ${name}`);
}

try {
  const credsRes = await fetch(`${server}/creds?id=agent-${run}`);
  const creds = (await credsRes.json()) as {
    username: string;
    password: string;
    stun: string[];
    turn: string[];
  };
  const udpTurn = creds.turn.filter((u) => u.includes('transport=udp'));
  const iceServers: IceServerConfig[] = [
    { urls: creds.stun },
    { urls: udpTurn, username: creds.username, credential: creds.password },
  ];
  if (warm) {
    // Camera already running (as when another viewer watches it): TTFF is then network + GOP replay.
    const src = hub.source('cam');
    src.subscribe(() => undefined);
    await src.waitForKeyframe(15_000);
  }
  out({ event: 'ready', warm });
  const offer = JSON.parse(await take(`offer-${run}`)) as { sdp: string };
  const { answerSdp, session: s } = await hub.createViewerSession('cam', offer.sdp, { iceServers });
  session = s;
  const post = await fetch(`${server}/box/answer-${run}`, {
    method: 'POST',
    body: JSON.stringify({ type: 'answer', sdp: answerSdp }),
  });
  await post.arrayBuffer();
  out({ event: 'answered' });
  const peer = s.peer;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    const check = (): void => {
      if (peer.stats().firstFrameAfterMs !== undefined || peer.closed) {
        clearTimeout(timer);
        resolve();
      }
    };
    peer.on('firstframe', check);
    peer.on('closed', check);
    check();
  });
  const pair = await peer.selectedCandidatePair().catch(() => undefined);
  out({ event: 'result', state: peer.connectionState, pair: pair ?? null, stats: peer.stats() });
} catch (e) {
  out({ event: 'error', message: e instanceof Error ? e.message : String(e) });
}
// Keep serving the session until the orchestrator stops us.
setInterval(() => {
  if (session?.peer.closed) out({ event: 'closed' });
}, 5000);
