import { useState, useEffect } from './lib.js';

export function parseRoute(hash = location.hash) {
  const parts = hash.replace(/^#\/?/, '').split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(hash.split('?')[1] || '');
  return { page: parts[0] || 'sell', id: parts[1] || null, query };
}

export function useRoute() {
  const [route, setRoute] = useState(parseRoute());
  useEffect(() => {
    const on = () => setRoute(parseRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function go(path) {
  location.hash = path.startsWith('#') ? path : '#' + path;
}
