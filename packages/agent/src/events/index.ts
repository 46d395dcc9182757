export * from './config.js';
export * from './motion.js';
