// A Hearth server in a process of its own, so that a test can kill it (SIGKILL) and start it again
// on the same data directory and port. argv: <dataDir> <port>. Prints "listening <url>".
import { startServer } from '@hearth/server';

const [dataDir, port] = process.argv.slice(2);
if (!dataDir || !port) throw new Error('usage: server-child.ts <dataDir> <port>');
const s = await startServer({
  dataDir,
  host: '127.0.0.1',
  port: Number(port),
  tls: { mode: 'off' },
  relay: { enabled: false },
  serveViewer: false,
});
process.stdout.write(`listening ${s.url}\n`);
