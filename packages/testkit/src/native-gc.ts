/**
 * libdatachannel's closed peers (node-datachannel) keep a test process alive until their JS
 * objects are garbage-collected: an idle process then lingers for about 90 s after its last test,
 * or longer. This collects them at once. (node-datachannel's own `cleanup()` crashed the process
 * with SIGSEGV here, so it is not used.) For test processes only: it turns on `--expose-gc`.
 */
export async function collectClosedPeers(rounds = 3): Promise<void> {
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  for (let i = 0; i < rounds; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
}
