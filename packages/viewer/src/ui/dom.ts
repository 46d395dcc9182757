/**
 * A tiny DOM builder. Text goes in through `textContent` only, never `innerHTML`, so a camera name
 * or an error message from the network cannot become markup. No inline styles (CSP
 * `default-src 'self'`): appearance is set by classes from app.css.
 */

type Child = Node | string | false | null | undefined;
type Attrs = Record<string, string | boolean | number | undefined | EventListener>;

/** Create an element: `h('button', { class: 'primary', onclick: f }, 'Pair')`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

/** Append children, skipping empty ones. */
export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

/** Replace all children. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}
