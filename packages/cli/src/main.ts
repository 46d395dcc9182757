/**
 * The `hearth` command.
 *
 *   hearth server [--config hearth.yaml] [--data-dir DIR] [--host H] [--port P] ...
 *   hearth agent  --server URL --cameras cameras.yaml [--data-dir DIR] [--pin-cert SHA256] [--ffmpeg PATH]
 *   hearth agent pairing [--data-dir DIR]   (the open pairing window's secrets, shown again)
 *   hearth agent reset --server URL --yes [--data-dir DIR] [--pin-cert SHA256] [--local-only]
 *   hearth demo   [--port 8443] [--data-dir .hearth/demo] [--ffmpeg PATH]
 *
 * Errors are printed as one line `hearth: <code>: <message>` and exit with status 1 (2 for usage:
 * `exitCode` in commands.ts).
 * `agent` and `demo` first check that ffmpeg (and ffprobe) run and have what the cameras need
 * (`E_FFMPEG` names what is missing and what to install).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { exitCode, run } from './commands.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number 0..65535');
  return n;
}

const FFMPEG_HELP = `
Needs ffmpeg with the libx264 encoder (Debian/Ubuntu: sudo apt install ffmpeg; it includes ffprobe).
It is checked before starting: if it is missing, the command stops with hearth: E_FFMPEG: ... saying
what to install.`;

const program = new Command('hearth')
  .description('Hearth: end-to-end encrypted remote access to your cameras, with no port forwarding')
  .showHelpAfterError()
  .enablePositionalOptions()
  .exitOverride();

program
  .command('server')
  .description(
    'run the rendezvous server (serves the viewer, routes signed messages, built-in STUN/TURN relay)',
  )
  .option('-c, --config <file>', 'YAML configuration file')
  .option('-d, --data-dir <dir>', 'data directory (server key, SQLite store, certificate)')
  .option('--host <address>', 'address to listen on')
  .option('-p, --port <port>', 'HTTP(S) port', port)
  .option('--public-url <url>', 'URL viewers and agents use to reach this server')
  .option('--tls-cert <file>', 'TLS certificate (PEM)')
  .option('--tls-key <file>', 'TLS private key (PEM)')
  .option(
    '--tls <mode>',
    'auto, acme, files, self-signed (explicit choice; agents then --pin-cert) or off (loopback only)',
  )
  .option('--acme-hostname <name>', 'public DNS name: obtain and renew the certificate over ACME')
  .option('--acme-email <email>', 'ACME account contact')
  .option('--acme-directory <url>', "ACME directory URL (default: Let's Encrypt)")
  .option('--no-relay', 'do not run the built-in STUN/TURN relay')
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  .action((o) => run('server', o));

const agent = program
  .command('agent')
  .description('run a camera agent: device identity, pairing, access control, ffmpeg capture, WebRTC')
  .option('-s, --server <url>', 'rendezvous server URL, e.g. https://hearth.example.org (required)')
  .option('--cameras <file>', 'camera map (YAML, go2rtc style: cameras: {name: source}) (required)')
  .passThroughOptions()
  .option('-d, --data-dir <dir>', 'data directory (device key, ACL)', '.hearth/agent')
  .option('--pin-cert <sha256>', "pin the server's self-signed certificate (SHA-256 fingerprint)")
  .option('--insecure', 'accept any server certificate (development only)')
  .option(
    '--accept-server-key <hsk>',
    'accept this server key as the pinned one (after a server reinstall; the agent pins the first it meets)',
  )
  .option('--ffmpeg <path>', 'ffmpeg executable (default: $HEARTH_FFMPEG, else ffmpeg in PATH)')
  .option('--ffprobe <path>', 'ffprobe executable (default: $HEARTH_FFPROBE, else ffprobe in PATH)')
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  .addHelpText('after', FFMPEG_HELP)
  .action((o) => run('agent', o));

agent
  .command('pairing')
  .description("show the open pairing window's QR, link and code again (they are printed only to a terminal)")
  .option('-d, --data-dir <dir>', 'the agent data directory', '.hearth/agent')
  .action((o) => run('agent-pairing', o));

agent
  .command('reset')
  .description(
    "factory reset: erase the device's recordings on the server, then its key, access list and recordings here (a new device ID at the next start)",
  )
  .option('-s, --server <url>', 'the server the agent uploads to (its blob store is erased first)')
  .option('-d, --data-dir <dir>', 'the agent data directory', '.hearth/agent')
  .option('--pin-cert <sha256>', "pin the server's self-signed certificate (SHA-256 fingerprint)")
  .option('--local-only', 'do not contact the server: its copy stays until an owner erases it')
  .option('--yes', 'really do it (required: nothing of the device can be recovered)')
  .action((o) => run('agent-reset', o));

program
  .command('demo')
  .description(
    'start a local server and an agent with a test-pattern camera, then print the URL and pairing code',
  )
  .option('-p, --port <port>', 'HTTP port on 127.0.0.1', port, 8443)
  .option('-d, --data-dir <dir>', 'data directory', '.hearth/demo')
  .option('--gop <seconds>', 'keyframe interval of the demo camera', '4')
  .option('--ffmpeg <path>', 'ffmpeg executable (default: $HEARTH_FFMPEG, else ffmpeg in PATH)')
  .option('--log-level <level>', 'trace, debug, info, warn, error', 'warn')
  .addHelpText('after', FFMPEG_HELP)
  .action((o) => run('demo', o));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : exitCode('E_USAGE'));
  throw e;
}
