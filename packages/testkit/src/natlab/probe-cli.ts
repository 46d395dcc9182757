/**
 * NAT lab probe: a standalone script (Node built-ins only) run inside lab namespaces with
 * `ip netns exec <ns> node [--import tsx] probe-cli.{ts,js} <command> [--flag value ...]`.
 * Every command prints JSON lines on stdout; the last line is the result.
 *
 *   serve   --udp 3478,3479,53 --tcp 3480 [--http 8080 --body TEXT]
 *           UDP reflector (answers `bind` with the observed source address) and punch rendezvous,
 *           a TCP banner server and an optional HTTP page. Prints {"event":"ready",...}; runs until killed.
 *   mapping --server IP --ports 3478,3479 --local-ip IP [--timeout MS]
 *           From one UDP socket, asks the reflector on each port for the mapped address.
 *   punch   --server IP --port 3478 --session ID --role NAME --local-ip IP [--timeout MS]
 *           Registers with the rendezvous, learns the peer's public and local candidates, and sends
 *           punches to both until a punch and an ack have arrived directly from the peer.
 *   tcp     --host IP --port P [--timeout MS]
 *           Connects and reads the banner.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';

type Flags = Record<string, string>;
interface Addr {
  ip: string;
  port: number;
}

function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    flags[a.slice(2)] = argv[i + 1] ?? '';
    i++;
  }
  return flags;
}

function need(flags: Flags, name: string): string {
  const v = flags[name];
  if (v === undefined || v === '') throw new Error(`missing --${name}`);
  return v;
}

const num = (flags: Flags, name: string, dflt?: number): number => {
  const v = flags[name];
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`missing --${name}`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number`);
  return n;
};

const ports = (s: string | undefined): number[] =>
  (s ?? '')
    .split(',')
    .filter((x) => x !== '')
    .map(Number);

const emit = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

function parseMsg(buf: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(buf.toString('utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const send = (sock: Socket, msg: unknown, to: Addr): void => {
  sock.send(JSON.stringify(msg), to.port, to.ip);
};

function bindUdp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '0.0.0.0', () => {
      s.removeListener('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

async function serve(flags: Flags): Promise<void> {
  const udpPorts = ports(flags.udp);
  const tcpPort = flags.tcp ? Number(flags.tcp) : undefined;
  const httpPort = flags.http ? Number(flags.http) : undefined;
  const body = flags.body ?? 'hearth natlab';
  // session -> role -> registration
  const sessions = new Map<string, Map<string, { pub: Addr; local: Addr; sock: Socket }>>();
  for (const port of udpPorts) {
    const sock = await bindUdp(port);
    sock.on('message', (buf: Buffer, r: RemoteInfo) => {
      const m = parseMsg(buf);
      if (!m) return;
      const from: Addr = { ip: r.address, port: r.port };
      if (m.t === 'bind') {
        send(sock, { t: 'mapped', id: m.id, ip: r.address, port: r.port, via: port }, from);
      } else if (m.t === 'reg' && typeof m.session === 'string' && typeof m.role === 'string') {
        const local = m.local as Addr | undefined;
        if (!local || typeof local.ip !== 'string' || typeof local.port !== 'number') return;
        let roles = sessions.get(m.session);
        if (!roles) {
          roles = new Map();
          sessions.set(m.session, roles);
        }
        roles.set(m.role, { pub: from, local, sock });
        send(sock, { t: 'mapped', ip: r.address, port: r.port, via: port }, from);
        for (const [role, reg] of roles) {
          if (role === m.role) continue;
          send(sock, { t: 'peer', role, pub: reg.pub, local: reg.local }, from);
          send(reg.sock, { t: 'peer', role: m.role, pub: from, local }, reg.pub);
        }
      }
    });
  }
  if (tcpPort !== undefined) {
    const srv = createTcpServer((c) => {
      c.on('error', () => undefined);
      c.end(`hello ${c.remoteAddress}:${c.remotePort}\n`);
    });
    await new Promise<void>((resolve) => srv.listen(tcpPort, '0.0.0.0', resolve));
  }
  if (httpPort !== undefined) {
    const srv = createHttpServer((req, res) => {
      const remote = req.socket.remoteAddress ?? '';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(
        `<!doctype html><html><head><title>hearth natlab</title></head><body>` +
          `<h1 id="body">${escapeHtml(body)}</h1><p id="remote">${escapeHtml(remote)}</p></body></html>`,
      );
    });
    await new Promise<void>((resolve) => srv.listen(httpPort, '0.0.0.0', resolve));
  }
  emit({ event: 'ready', udp: udpPorts, tcp: tcpPort ?? null, http: httpPort ?? null });
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function mapping(flags: Flags): Promise<void> {
  const server = need(flags, 'server');
  const targets = ports(need(flags, 'ports'));
  const localIp = need(flags, 'local-ip');
  const timeout = num(flags, 'timeout', 1500);
  const sock = await bindUdp(num(flags, 'local-port', 0));
  const local: Addr = { ip: localIp, port: sock.address().port };
  const mapped = new Map<number, Addr>();
  sock.on('message', (buf: Buffer) => {
    const m = parseMsg(buf);
    if (
      m?.t === 'mapped' &&
      typeof m.via === 'number' &&
      typeof m.ip === 'string' &&
      typeof m.port === 'number'
    ) {
      mapped.set(m.via, { ip: m.ip, port: m.port });
    }
  });
  const deadline = Date.now() + timeout;
  // Ask sequentially, so a NAT sees the destinations in a known order; retry until answered.
  for (const port of targets) {
    while (!mapped.has(port) && Date.now() < deadline) {
      send(sock, { t: 'bind', id: port }, { ip: server, port });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  sock.close();
  const results = targets.map((port) => ({ port, mapped: mapped.get(port) ?? null }));
  const got = results.map((r) => r.mapped).filter((m): m is Addr => m !== null);
  let kind: 'eim' | 'symmetric' | 'none' | 'blocked' | 'partial';
  if (got.length === 0) kind = 'blocked';
  else if (got.length < results.length) kind = 'partial';
  else if (got.every((m) => m.ip === local.ip && m.port === local.port)) kind = 'none';
  else if (got.every((m) => m.ip === got[0]?.ip && m.port === got[0]?.port)) kind = 'eim';
  else kind = 'symmetric';
  emit({ ok: got.length === results.length, kind, local, results });
}

async function punch(flags: Flags): Promise<void> {
  const server: Addr = { ip: need(flags, 'server'), port: num(flags, 'port') };
  const session = need(flags, 'session');
  const role = need(flags, 'role');
  const localIp = need(flags, 'local-ip');
  const timeout = num(flags, 'timeout', 4000);
  const sock = await bindUdp(0);
  const local: Addr = { ip: localIp, port: sock.address().port };
  let mapped: Addr | undefined;
  let peer: { role: string; pub: Addr; local: Addr } | undefined;
  let gotPunch: Addr | undefined;
  let gotAck: Addr | undefined;
  let sent = 0;
  let received = 0;
  const same = (a: Addr, b: Addr): boolean => a.ip === b.ip && a.port === b.port;
  sock.on('message', (buf: Buffer, r: RemoteInfo) => {
    const m = parseMsg(buf);
    if (!m) return;
    const from: Addr = { ip: r.address, port: r.port };
    if (same(from, server)) {
      if (m.t === 'mapped' && typeof m.ip === 'string' && typeof m.port === 'number') {
        mapped = { ip: m.ip, port: m.port };
      }
      if (m.t === 'peer' && !peer)
        peer = { role: String(m.role), pub: m.pub as Addr, local: m.local as Addr };
      return;
    }
    if (m.session !== session || m.from === role) return;
    received++;
    if (m.t === 'punch') {
      gotPunch ??= from;
      send(sock, { t: 'ack', session, from: role }, from);
    } else if (m.t === 'ack') {
      gotAck ??= from;
    }
  });
  const deadline = Date.now() + timeout;
  let doneAt: number | undefined;
  while (Date.now() < deadline) {
    if (!peer) {
      send(sock, { t: 'reg', session, role, local }, server);
    } else {
      const cands = [peer.pub];
      if (!same(peer.local, peer.pub)) cands.push(peer.local);
      for (const c of cands) {
        send(sock, { t: 'punch', session, from: role }, c);
        sent++;
      }
    }
    if (gotPunch && gotAck) {
      // Keep answering for a moment so the peer completes too.
      doneAt ??= Date.now();
      if (Date.now() - doneAt > 600) break;
    }
    await new Promise((r) => setTimeout(r, peer ? 50 : 100));
  }
  sock.close();
  const ok = gotPunch !== undefined && gotAck !== undefined;
  const via = gotAck && peer ? (same(gotAck, peer.local) ? 'local' : 'public') : null;
  emit({
    ok,
    role,
    local,
    mapped: mapped ?? null,
    peer: peer ?? null,
    gotPunch,
    gotAck,
    via,
    sent,
    received,
  });
}

function tcp(flags: Flags): Promise<void> {
  const host = need(flags, 'host');
  const port = num(flags, 'port');
  const timeout = num(flags, 'timeout', 2000);
  return new Promise((resolve) => {
    const started = Date.now();
    let data = '';
    let settled = false;
    const finish = (o: Record<string, unknown>): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      emit({ ...o, ms: Date.now() - started });
      resolve();
    };
    const sock = connect({ host, port });
    sock.setEncoding('utf8');
    sock.setTimeout(timeout, () => finish({ ok: false, error: 'timeout' }));
    sock.on('data', (d: string) => {
      data += d;
    });
    sock.on('end', () => finish({ ok: true, banner: data.trim() }));
    sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? e.message }));
  });
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  const flags = parseFlags(rest);
  switch (cmd) {
    case 'serve':
      return serve(flags);
    case 'mapping':
      return mapping(flags);
    case 'punch':
      return punch(flags);
    case 'tcp':
      return tcp(flags);
    default:
      throw new Error(
        `usage: probe-cli serve|mapping|punch|tcp [--flag value ...] (got ${cmd ?? 'nothing'})`,
      );
  }
}

main().catch((e: unknown) => {
  emit({ ok: false, error: e instanceof Error ? e.message : String(e) });
  process.exitCode = 2;
});
