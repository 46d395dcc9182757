/**
 * Hearth test kit: network-namespace NAT lab, browser driver, fixtures. Tests and benchmarks only.
 * A leaf: it imports no Hearth package (the scenarios that run the product live in @hearth/e2e).
 */
export {
  BASE_CHROMIUM_FLAGS,
  CHROMIUM_PATH,
  type ChromiumHandle,
  type ChromiumOptions,
  chromiumAvailable,
  chromiumFlags,
  launchChromium,
} from './browser.js';
export * from './native-gc.js';
export * from './natlab/index.js';
export {
  type FixtureKeyframe,
  type OnvifFixture,
  type OnvifFixtureStats,
  RTSP_PYTHON,
  type RtspServerHandle,
  type RtspServerOptions,
  rtspServerAvailable,
  startOnvifFixture,
  startRtspServer,
} from './rtsp/index.js';
export * from './viewer-driver.js';
