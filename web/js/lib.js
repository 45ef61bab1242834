// The one place the vendored view library is imported from.
export {
  h, html, render, useState, useEffect, useRef, useMemo, useCallback, useReducer, useLayoutEffect,
} from '../vendor/htm-preact-standalone.module.js';
