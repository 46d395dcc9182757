/**
 * Imported first by the app entry: configure libraries for a strict Content-Security-Policy
 * (`default-src 'self'`, no `unsafe-eval`). zod would otherwise probe `new Function` once, which a
 * strict CSP reports as a violation even though zod catches the error.
 */
import { z } from 'zod';

z.config({ jitless: true });
