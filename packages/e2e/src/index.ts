/**
 * Hearth end-to-end scenarios: the NAT matrix (`natlab/matrix*`), the full-stack matrix
 * (`natlab/fullstack*`), the breach-replay suite and the package-graph checker. Tests and benchmarks
 * only. Unlike @hearth/testkit (a leaf), this package runs the product, so it depends on it.
 */
export {
  AGENT_SYMMETRIC,
  type AppPath,
  expectedAppPath,
  FULLSTACK_PORT,
  type FullStackOptions,
  type FullStackRun,
  formatFullStackMarkdown,
  formatFullStackRun,
  runFullStackMatrix,
  runFullStackTopology,
} from './natlab/fullstack.js';
export {
  type CandidateInfo,
  captureRelayedSession,
  classifyPair,
  directShare,
  expectedPath,
  formatMatrixMarkdown,
  formatMatrixSummary,
  formatRun,
  MATRIX_AGENT_SCRIPT,
  MATRIX_HTTP_PORT,
  MATRIX_RELAY_PORT,
  MATRIX_SERVER_SCRIPT,
  MatrixLab,
  type MatrixMode,
  type MatrixOptions,
  type MatrixRun,
  type MatrixStack,
  matrixNodeArgs,
  type PathKind,
  type RelayCapture,
  runChromiumSession,
  runHearthSession,
  runMatrixTopology,
  runNatMatrix,
  type ViewerResult,
} from './natlab/matrix.js';
