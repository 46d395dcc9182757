// Child process for the lifecycle tests: builds a lab with the given prefix, starts a long sleeper in
// the agent namespace, prints {"ready":...} and waits to be killed (SIGKILL = crash, SIGINT = Ctrl-C).
//   node --conditions=source --import tsx lab-child.ts <prefix>
import { NatLab } from '@hearth/testkit';

const prefix = process.argv[2];
if (!prefix) throw new Error('usage: lab-child.ts <prefix>');
const lab = await NatLab.create('bothEim', { prefix });
const sleeper = lab.spawn('agent', 'sleep', ['600']);
process.stdout.write(`${JSON.stringify({ ready: true, prefix: lab.prefix, sleeper: sleeper.pid })}\n`);
setInterval(() => undefined, 60_000);
