import { ERRORS, type ErrorCode } from '@hearth/protocol';

/**
 * The HTTP status of a failed request, from its registry code: the one place where error codes
 * become HTTP statuses.
 */
export function httpStatus(code: ErrorCode): number {
  switch (code) {
    case 'E_NOT_FOUND':
      return 404;
    case 'E_BAD_METHOD':
      return 405;
    case 'E_TOO_LARGE':
      return 413;
    case 'E_QUOTA':
      return 507;
    case 'E_STALE_TICKET':
    case 'E_BAD_STATE':
      return 409;
  }
  switch (ERRORS[code].class) {
    case 'protocol':
      return 400;
    case 'verification':
      return 401;
    case 'access':
      return 403;
    case 'limit':
      return 429;
    case 'timeout':
      return 504;
    case 'unavailable':
    case 'config':
      return 503;
    case 'internal':
      return 500;
  }
}
