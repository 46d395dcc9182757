/** Hearth camera agent: device identity, pairing, ACL, ffmpeg capture, WebRTC (werift) fan-out. */
export * from './media/index.js';
