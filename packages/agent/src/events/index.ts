export * from './blob-client.js';
export * from './config.js';
export * from './motion.js';
export * from './recorder.js';
