export * from './config.js';
export * from './motion.js';
export * from './push.js';
export * from './recorder.js';
