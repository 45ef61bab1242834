// Shop-wide display settings. Money is kept in integer minor units (cents) everywhere;
// only the screen turns it into "3.50".
export const CURRENCY_SYMBOL = '$';
export const MINOR_UNITS = 100; // minor units per major unit
export const API_BASE = '/api/v1';
export const TOKEN_KEY = 'lemonade.accessToken';
// How often the app asks /health while the server is unreachable.
export const RETRY_MS = 3000;
// How often a pending order is polled.
export const PENDING_POLL_MS = 1000;
export const MAX_LINES = 50;
export const MAX_QTY = 1000;
