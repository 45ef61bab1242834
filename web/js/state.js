// App-wide state the shell reacts to: connection, auth, server health, toasts.
export const state = {
  offline: false, // the server cannot be reached
  health: null, // last /health answer
  auth: { needed: false, had: false },
  toasts: [],
  online: 0, // bumps each time the connection comes back, so pages reload
};
const listeners = new Set();
export function setState(patch) {
  Object.assign(state, patch);
  for (const fn of listeners) fn(state);
}
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

let toastId = 0;
export function toast(text, kind = 'ok') {
  const id = ++toastId;
  setState({ toasts: [...state.toasts, { id, text, kind }] });
  setTimeout(() => setState({ toasts: state.toasts.filter((t) => t.id !== id) }), kind === 'error' ? 7000 : 3500);
}
