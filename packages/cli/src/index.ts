/** The hearth command: server, agent, demo. The executable is bin/hearth.js (src/main.ts). */
export { CliError, run } from './commands.js';
export { renderPairing } from './pairing-display.js';
