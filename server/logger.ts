export { createLogger } from '../platform/logger.js';
