/**
 * `--pin-cert` against the real stack: a real Hearth server with its self-signed certificate, and
 * an impostor (another real Hearth server, with another certificate, standing where the agent looks
 * for its server: a man in the middle). The agent pinned to the real certificate never
 * authenticates to the impostor and logs a possible attack; control: the same agent without the pin
 * (--insecure) authenticates to the impostor, so the test can fail.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Agent, type AgentOptions, startAgent } from '@hearth/agent';
import { type HearthServer, startServer } from '@hearth/server';

const dir = mkdtempSync(join(tmpdir(), 'hearth-pin-'));
const media: AgentOptions['media'] = {
  cameras: () => [],
  createViewerSession: () => Promise.reject(new Error('not in this test')),
};
const selfSigned = (name: string) =>
  startServer({
    dataDir: join(dir, name),
    host: '127.0.0.1',
    port: 0,
    relay: { enabled: false },
    tls: { mode: 'self-signed' },
  });

let real: HearthServer;
let impostor: HearthServer;
before(async () => {
  real = await selfSigned('real');
  impostor = await selfSigned('impostor');
});
after(async () => {
  await real?.close();
  await impostor?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Start an agent and report the first of: authenticated (`ready`), or an error logged. */
async function attempt(
  name: string,
  o: Partial<AgentOptions> & { serverUrl: string },
): Promise<{ agent: Agent; first: Promise<string> }> {
  let report: (s: string) => void = () => {};
  const first = new Promise<string>((r) => {
    report = r;
  });
  const agent = await startAgent({
    dataDir: join(dir, `agent-${name}`),
    media,
    minBackoffMs: 50,
    maxBackoffMs: 200,
    log: { info() {}, warn() {}, error: (_o, msg) => report(`error: ${msg}`) },
    ...o,
  });
  agent.client.once('ready', () => report('ready'));
  if (agent.client.connected) report('ready');
  return { agent, first };
}

describe('--pin-cert against real servers', () => {
  it('the agent pinned to the real server authenticates to it', async () => {
    assert.ok(real.certSha256 && impostor.certSha256 && real.certSha256 !== impostor.certSha256);
    const { agent, first } = await attempt('good', {
      serverUrl: real.url,
      pinnedCertSha256: real.certSha256!,
    });
    try {
      assert.equal(await first, 'ready');
    } finally {
      await agent.close();
    }
  });

  it('attack: pointed at an impostor, it refuses the certificate (possible attack) and never authenticates', async () => {
    const { agent, first } = await attempt('mitm', {
      serverUrl: impostor.url,
      pinnedCertSha256: real.certSha256!,
    });
    try {
      assert.equal(
        await first,
        'error: server certificate does not match the pinned fingerprint: possible attack',
      );
      assert.equal(agent.client.connected, false);
    } finally {
      await agent.close();
    }
  });

  it('control: without the pin (--insecure), the same agent authenticates to the impostor', async () => {
    const { agent, first } = await attempt('insecure', { serverUrl: impostor.url, insecure: true });
    try {
      assert.equal(await first, 'ready');
    } finally {
      await agent.close();
    }
  });
});
