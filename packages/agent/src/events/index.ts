export * from './blob-client.js';
export * from './config.js';
export * from './motion.js';
export * from './outbox.js';
export * from './pipeline.js';
export * from './readers.js';
export * from './recorder.js';
export * from './retention.js';
