/** Child process for the benchmark: runs RelayServer on loopback and prints its ports as JSON. */
import { RelayServer } from '../src/index.js';

const secret = process.argv[2] ?? 'bench-secret';
const server = new RelayServer();
const ports = await server.start({
  realm: 'hearth.test',
  authSecret: secret,
  host: '127.0.0.1',
  udpPort: 0,
  tcpPort: 0,
  allowLoopbackPeers: true,
  maxAllocationsPerUser: 100_000,
  bytesPerSecond: 0,
});
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.on('SIGTERM', () => {
  process.stderr.write(`${JSON.stringify(server.metrics)}\n`);
  void server.close().then(() => process.exit(0));
});
