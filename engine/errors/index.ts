export { AppError } from './app-error';
export { isUnavailableError } from './classify';
export { ERROR_CODES, type ErrorCode } from './codes';
