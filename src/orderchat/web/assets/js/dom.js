/**
 * Building DOM without markup strings: every piece of text becomes a text node,
 * so nothing a user typed can ever be parsed as HTML.
 */

function isAttrs(value) {
  return value !== null && typeof value === "object" && !(value instanceof Node) && !Array.isArray(value);
}

function append(el, child) {
  if (child === null || child === undefined || child === false || child === true) return;
  if (Array.isArray(child)) {
    for (const c of child) append(el, c);
  } else if (child instanceof Node) {
    el.appendChild(child);
  } else {
    el.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * Create an element. Text goes in as text nodes, never as markup.
 * attrs: `class`, `dataset` (object), `testid` (→ data-testid), `on` ({event: handler}),
 * `style` (object, applied through CSSOM so the CSP allows it); any other key becomes an
 * attribute (`true` → empty attribute, `false`/`null`/`undefined` → left out).
 * The attrs object may be omitted: `h("p", "text")`.
 * @param {string} tag
 * @param {object|Node|string|Array} [attrs]
 * @param {...(Node|string|number|Array|null|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (isAttrs(attrs)) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") {
        el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : String(value);
      } else if (key === "dataset") {
        for (const [k, v] of Object.entries(value)) {
          if (v !== null && v !== undefined && v !== false) el.dataset[k] = String(v);
        }
      } else if (key === "testid") {
        el.setAttribute("data-testid", String(value));
      } else if (key === "on") {
        for (const [event, handler] of Object.entries(value)) {
          if (handler) el.addEventListener(event, handler);
        }
      } else if (key === "style" && typeof value === "object") {
        for (const [prop, v] of Object.entries(value)) {
          if (prop.startsWith("--")) el.style.setProperty(prop, String(v));
          else el.style[prop] = v;
        }
      } else if (value === true) {
        el.setAttribute(key, "");
      } else {
        el.setAttribute(key, String(value));
      }
    }
  } else {
    append(el, attrs);
  }
  append(el, children);
  return el;
}

/**
 * Remove every child, so a view can be rebuilt in place without markup strings.
 * @param {Element} el
 * @returns {Element} the same element, emptied
 */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/**
 * The first element matching a selector, a shorter `querySelector`.
 * @param {string} sel
 * @param {ParentNode} [root=document]
 * @returns {Element|null}
 */
export function $(sel, root = document) {
  return root.querySelector(sel);
}

/**
 * Every element matching a selector, as an array (so it can be mapped and filtered).
 * @param {string} sel
 * @param {ParentNode} [root=document]
 * @returns {Element[]}
 */
export function $$(sel, root = document) {
  return Array.from(root.querySelectorAll(sel));
}
