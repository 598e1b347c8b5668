/**
 * Line icons drawn from constant path data, built with DOM calls so no markup string
 * is ever parsed. 24×24 grid, stroked with the current text colour.
 */

const SVG_NS = "http://www.w3.org/2000/svg";

/* Each icon is a list of path `d` strings (or circles as ["c", cx, cy, r]). */
const ICONS = {
  send: ["M4 12l16-8-6 16-3-7z", "M11 13l9-9"],
  clip: ["M20 11.5l-8.2 8.2a5 5 0 01-7.1-7.1l8.5-8.5a3.4 3.4 0 014.8 4.8l-8.5 8.5a1.7 1.7 0 01-2.4-2.4l7.8-7.8"],
  mic: ["M12 3a3 3 0 00-3 3v6a3 3 0 006 0V6a3 3 0 00-3-3z", "M5 11a7 7 0 0014 0", "M12 18v3"],
  stop: ["M7 7h10v10H7z"],
  close: ["M6 6l12 12", "M18 6L6 18"],
  reply: ["M10 8L5 12l5 4", "M5 12h9a5 5 0 015 5v1"],
  // Reply is a curved arrow pointing back at a message; recall is a circle turning
  // back on itself, so the two never look alike side by side.
  recall: ["M4 5v5h5", "M5.5 15a7.5 7.5 0 102-8L4 10", "M9.5 9.5l5 5", "M14.5 9.5l-5 5"],
  back: ["M15 5l-7 7 7 7"],
  search: [["c", 11, 11, 6.5], "M16 16l4.5 4.5"],
  plus: ["M12 5v14", "M5 12h14"],
  file: ["M14 3H7a2 2 0 00-2 2v14a2 2 0 002 2h10a2 2 0 002-2V8z", "M14 3v5h5"],
  image: ["M4 5h16v14H4z", ["c", 9, 10, 1.6], "M20 16l-5-5-8 8"],
  order: ["M4 7l8-4 8 4v10l-8 4-8-4z", "M4 7l8 4 8-4", "M12 11v10"],
  alert: ["M12 4l9 16H3z", "M12 10v4", "M12 17v.5"],
  check: ["M5 12.5l4.5 4.5L19 7.5"],
  clock: [["c", 12, 12, 8.5], "M12 7.5V12l3 2"],
  logout: ["M15 4h3a2 2 0 012 2v12a2 2 0 01-2 2h-3", "M10 16l-4-4 4-4", "M6 12h10"],
  user: [["c", 12, 8, 4], "M4.5 20a7.5 7.5 0 0115 0"],
  users: [["c", 9, 8, 3.5], "M2.5 20a6.5 6.5 0 0113 0", "M16 4.5a3.5 3.5 0 010 7", "M18 14a6.5 6.5 0 013.5 6"],
  userPlus: [["c", 10, 8, 4], "M2.5 20a7.5 7.5 0 0115 0", "M19 8v6", "M16 11h6"],
  hash: ["M5 9h15", "M4 15h15", "M10 4L8 20", "M16 4l-2 16"],
  download: ["M12 4v11", "M7 10l5 5 5-5", "M5 20h14"],
  lock: ["M6 11h12v9H6z", "M8.5 11V8a3.5 3.5 0 017 0v3"],
  more: [
    ["c", 5, 12, 1.2],
    ["c", 12, 12, 1.2],
    ["c", 19, 12, 1.2],
  ],
  video: ["M3 6h12v12H3z", "M15 10l6-3.5v11L15 14z"],
  chat: ["M4 5h16v11H9l-5 4z"],
  truck: ["M2 6h11v10H2z", "M13 10h4l3 3v3h-7", ["c", 6, 18, 1.8], ["c", 17, 18, 1.8]],
  bell: ["M6 16V11a6 6 0 0112 0v5l2 2H4z", "M10 20a2 2 0 004 0"],
  pin: ["M9 3h6l-1 6 3 3H7l3-3z", "M12 12v9"],
  bellOff: ["M6 16V11a6 6 0 0112 0v5l2 2H4z", "M10 20a2 2 0 004 0", "M3 3l18 18"],
  offline: [
    "M3 3l18 18",
    "M8.5 16.5a5 5 0 017 0",
    "M5 13a10 10 0 015.2-2.8",
    "M19 13a10 10 0 00-2.6-1.9",
    "M2 9.5a15 15 0 016-3.2",
    "M22 9.5A15 15 0 0012.5 5",
    ["c", 12, 20, 0.6],
  ],
  retry: ["M20 5v5h-5", "M19.5 10A8 8 0 104 12"],
  linkOff: [
    "M10 14a4 4 0 005.7 0l3-3a4 4 0 00-5.7-5.7l-1 1",
    "M14 10a4 4 0 00-5.7 0l-3 3a4 4 0 005.7 5.7l1-1",
    "M4 4l16 16",
  ],
  // Calls: a handset, the same handset turned down to hang up, and the controls.
  phone: [
    "M5 4h3.5l1.5 4.5-2.2 1.4a11 11 0 006.3 6.3l1.4-2.2L20 15.5V19a1.5 1.5 0 01-1.6 1.5A16 16 0 013.5 5.6 1.5 1.5 0 015 4z",
  ],
  hangup: [
    "M3.2 14.2l1.9-2a13 13 0 0113.8 0l1.9 2a1.3 1.3 0 01-.1 1.9l-1.8 1.5a1 1 0 01-1.3 0l-1.7-1.5V13.6a11 11 0 00-7.8 0v2.5l-1.7 1.5a1 1 0 01-1.3 0l-1.8-1.5a1.3 1.3 0 01-.1-1.9z",
  ],
  micOff: ["M12 3a3 3 0 00-3 3v6a3 3 0 006 0V6a3 3 0 00-3-3z", "M5 11a7 7 0 0014 0", "M12 18v3", "M3 3l18 18"],
  videoOff: ["M3 6h12v12H3z", "M15 10l6-3.5v11L15 14z", "M2 2l20 20"],
  screen: ["M3 4h18v12H3z", "M8 20h8", "M12 16v4", "M12 13V7", "M9 10l3-3 3 3"],
  flip: ["M4 8h11a4 4 0 014 4", "M7 5L4 8l3 3", "M20 16H9a4 4 0 01-4-4", "M17 19l3-3-3-3"],
  camera: ["M4 8h3l2-3h6l2 3h3v11H4z", ["c", 12, 13, 3.5]],
  expand: ["M4 9V4h5", "M20 9V4h-5", "M4 15v5h5", "M20 15v5h-5"],
  shrink: ["M9 4v5H4", "M15 4v5h5", "M9 20v-5H4", "M15 20v-5h5"],
  minimize: ["M6 16h12"],
  restore: ["M5 6h14v12H5z"],
};

/**
 * An icon element; decorative (aria-hidden) because buttons carry their own labels.
 * @param {string} name one of the keys above
 * @param {string} [cls] extra class
 * @returns {SVGSVGElement}
 */
export function icon(name, cls) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.8");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", cls ? `icon ${cls}` : "icon");
  for (const part of ICONS[name] || []) {
    if (Array.isArray(part)) {
      const circle = document.createElementNS(SVG_NS, "circle");
      circle.setAttribute("cx", String(part[1]));
      circle.setAttribute("cy", String(part[2]));
      circle.setAttribute("r", String(part[3]));
      svg.appendChild(circle);
    } else {
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", part);
      svg.appendChild(path);
    }
  }
  return svg;
}
