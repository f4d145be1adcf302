export { type Config, ConfigError, loadConfig, type RedisTarget } from './config';
export { type Keys, loadKeys } from './keys';
