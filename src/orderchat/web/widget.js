/**
 * The shop's chat on any site (docs/consults.md §1): one tag,
 *
 *   <script src="https://chat.example.com/widget.js" data-sku="TNT-2P" data-lang="en" async></script>
 *
 * adds a round button to the page; it opens the shop's `/chat` in a frame, with the
 * page's address and the SKU, so staff see what the visitor was looking at.
 *
 * The site's Content-Security-Policy only needs to allow this origin in `script-src`
 * and `frame-src`: nothing here is inline code, no <style> element is added and no
 * style attribute is written; every style is set through the element's CSSOM
 * (`element.style`), which a policy without 'unsafe-inline' still allows.
 *
 * Optional attributes: `data-sku`, `data-lang` (zh-CN or en; else the browser's),
 * `data-tag` (shows on the consult), `data-position` ("left" puts the button left).
 *
 * The visitor's session: a browser that blocks third-party storage gives the frame no
 * storage of its own, so this script keeps the visitor's token in this page's
 * localStorage (`orderchat-widget:<OrderChat origin>`) and hands it to the frame when
 * the frame says it is ready. Messages are taken only from the OrderChat origin and the
 * widget's own frame, and only a visitor's session (a customer's token, which sees only
 * that visitor's consults) is ever kept.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) {
    // Some loaders run the tag without a current script: find it by its name.
    var all = document.getElementsByTagName("script");
    for (var i = all.length - 1; i >= 0; i -= 1) {
      if (/\/widget\.js(\?|#|$)/.test(all[i].src)) {
        script = all[i];
        break;
      }
    }
  }
  if (!script || !script.src || window.__orderchatWidget) return;
  window.__orderchatWidget = true;

  var ORIGIN = new URL(script.src, location.href).origin;
  // This page's origin, for the frame to answer to; none on an opaque origin (file:, sandbox).
  var HOST = /^https?:\/\//.test(location.origin) ? location.origin : null;
  var KEY = "orderchat-widget:" + ORIGIN;
  var MSG = "orderchat-widget:";
  var NARROW = "(max-width: 600px)";
  var Z = "2147483000";
  var ACCENT = "#1d6fdc";

  var TEXTS = {
    "zh-CN": { open: "在线咨询", close: "关闭咨询窗口", frame: "在线咨询" },
    en: { open: "Chat with us", close: "Close the chat", frame: "Chat with the shop" },
  };

  function language() {
    var asked = (script.getAttribute("data-lang") || navigator.language || "").toLowerCase();
    return asked.indexOf("zh") === 0 ? "zh-CN" : asked ? "en" : "zh-CN";
  }

  var lang = language();
  var text = TEXTS[lang];

  function css(el, styles) {
    for (var key in styles) {
      if (Object.prototype.hasOwnProperty.call(styles, key)) el.style[key] = styles[key];
    }
    return el;
  }

  function svg(paths, size) {
    var ns = "http://www.w3.org/2000/svg";
    var el = document.createElementNS(ns, "svg");
    el.setAttribute("viewBox", "0 0 24 24");
    el.setAttribute("width", String(size));
    el.setAttribute("height", String(size));
    el.setAttribute("fill", "none");
    el.setAttribute("stroke", "currentColor");
    el.setAttribute("stroke-width", "2");
    el.setAttribute("stroke-linecap", "round");
    el.setAttribute("stroke-linejoin", "round");
    el.setAttribute("aria-hidden", "true");
    el.setAttribute("focusable", "false");
    for (var j = 0; j < paths.length; j += 1) {
      var path = document.createElementNS(ns, "path");
      path.setAttribute("d", paths[j]);
      el.appendChild(path);
    }
    return el;
  }

  function chatUrl() {
    var params = new URLSearchParams();
    params.set("embed", "1");
    params.set("src", "widget");
    // The server keeps addresses of up to 500 characters; a longer one is left out.
    if (location.href.length <= 500) params.set("page", location.href);
    var sku = script.getAttribute("data-sku");
    var tag = script.getAttribute("data-tag");
    if (sku) params.set("sku", sku);
    if (tag) params.set("tag", tag);
    params.set("lang", lang);
    if (HOST) params.set("host", HOST);
    return ORIGIN + "/chat?" + params.toString();
  }

  var left = script.getAttribute("data-position") === "left";
  var side = left ? "left" : "right";

  var button = document.createElement("button");
  button.type = "button";
  button.id = "orderchat-widget-button";
  button.setAttribute("data-testid", "orderchat-widget-button");
  button.setAttribute("aria-label", text.open);
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "orderchat-widget-panel");
  button.title = text.open;
  button.appendChild(svg(["M4 5h16v11H9l-5 4z"], 26));
  css(button, {
    position: "fixed",
    bottom: "20px",
    width: "56px",
    height: "56px",
    margin: "0",
    padding: "0",
    border: "0",
    borderRadius: "50%",
    background: ACCENT,
    color: "#ffffff",
    boxShadow: "0 6px 18px rgba(16, 24, 40, 0.25)",
    cursor: "pointer",
    display: "flex",
    alignItems: "center",
    justifyContent: "center",
    zIndex: Z,
  });
  button.style[side] = "20px";

  var panel = document.createElement("div");
  panel.id = "orderchat-widget-panel";
  panel.setAttribute("data-testid", "orderchat-widget-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", text.frame);
  panel.hidden = true;
  css(panel, {
    position: "fixed",
    zIndex: Z,
    background: "#ffffff",
    overflow: "hidden",
    display: "none",
    flexDirection: "column",
  });

  // A slim bar of the site's side above the frame: the title and the close button, so
  // nothing covers the chat's own controls.
  var bar = document.createElement("div");
  css(bar, {
    flex: "0 0 auto",
    display: "flex",
    alignItems: "center",
    justifyContent: "space-between",
    gap: "8px",
    height: "40px",
    padding: "0 4px 0 14px",
    background: ACCENT,
    color: "#ffffff",
    font: "600 14px/1.2 system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif",
  });
  var title = document.createElement("span");
  title.textContent = text.open;
  css(title, { overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" });

  var close = document.createElement("button");
  close.type = "button";
  close.id = "orderchat-widget-close";
  close.setAttribute("data-testid", "orderchat-widget-close");
  close.setAttribute("aria-label", text.close);
  close.title = text.close;
  close.appendChild(svg(["M6 6l12 12", "M18 6L6 18"], 20));
  css(close, {
    flex: "0 0 auto",
    width: "36px",
    height: "36px",
    margin: "0",
    padding: "0",
    border: "0",
    borderRadius: "50%",
    background: "transparent",
    color: "#ffffff",
    cursor: "pointer",
    display: "flex",
    alignItems: "center",
    justifyContent: "center",
  });
  bar.appendChild(title);
  bar.appendChild(close);

  var frame = null;

  // --- the visitor's session, kept for the frame ---------------------------------------

  function isVisitorSession(s) {
    if (!s || typeof s !== "object") return false;
    var u = s.user;
    return (
      typeof s.token === "string" &&
      s.token.length > 0 &&
      s.token.length <= 512 &&
      !!u &&
      typeof u === "object" &&
      typeof u.id === "string" &&
      (u.kind === "customer" || u.kind === "visitor") &&
      (!u.roles || u.roles.length === 0)
    );
  }

  function forgetSession() {
    try {
      localStorage.removeItem(KEY);
    } catch {
      // No storage here either: nothing was kept.
    }
  }

  function keptSession() {
    var s;
    try {
      s = JSON.parse(localStorage.getItem(KEY) || "null");
    } catch {
      return null;
    }
    if (!isVisitorSession(s)) return null;
    if (typeof s.expires_ts === "number" && s.expires_ts <= Date.now()) {
      forgetSession();
      return null;
    }
    return s;
  }

  function keepSession(s) {
    var u = s.user;
    var value = {
      token: s.token,
      expires_ts: typeof s.expires_ts === "number" ? s.expires_ts : null,
      user: {
        id: u.id,
        username: typeof u.username === "string" ? u.username : "",
        display_name: typeof u.display_name === "string" ? u.display_name : "",
        roles: [],
        kind: u.kind,
      },
    };
    try {
      localStorage.setItem(KEY, JSON.stringify(value));
    } catch {
      // This page has no storage: the visitor's session lasts as long as the frame.
    }
  }

  window.addEventListener("message", function (event) {
    // Only the OrderChat page in this widget's own frame speaks to the widget.
    if (event.origin !== ORIGIN || !frame || event.source !== frame.contentWindow) return;
    var data = event.data;
    if (!data || typeof data !== "object" || typeof data.type !== "string") return;
    if (data.type === MSG + "ready") {
      frame.contentWindow.postMessage({ type: MSG + "session", session: keptSession() }, ORIGIN);
    } else if (data.type === MSG + "store") {
      if (isVisitorSession(data.session)) keepSession(data.session);
    } else if (data.type === MSG + "forget") {
      forgetSession();
    }
  });

  var narrow = window.matchMedia ? window.matchMedia(NARROW) : null;

  function isNarrow() {
    return narrow ? narrow.matches : window.innerWidth <= 600;
  }

  function layout() {
    if (isNarrow()) {
      // A phone: the chat takes the whole screen, like an app of its own.
      css(panel, {
        top: "0",
        left: "0",
        right: "0",
        bottom: "0",
        width: "100%",
        height: "100%",
        maxHeight: "none",
        borderRadius: "0",
        boxShadow: "none",
      });
    } else {
      css(panel, {
        top: "auto",
        left: left ? "20px" : "auto",
        right: left ? "auto" : "20px",
        bottom: "88px",
        width: "380px",
        height: "600px",
        maxHeight: "calc(100vh - 108px)",
        borderRadius: "14px",
        boxShadow: "0 12px 32px rgba(16, 24, 40, 0.28)",
      });
    }
  }

  function ensureFrame() {
    if (frame) return frame;
    frame = document.createElement("iframe");
    frame.id = "orderchat-widget-frame";
    frame.setAttribute("data-testid", "orderchat-widget-frame");
    frame.title = text.frame;
    frame.src = chatUrl();
    frame.setAttribute("allow", "microphone; camera; autoplay; clipboard-write");
    frame.setAttribute("referrerpolicy", "strict-origin-when-cross-origin");
    css(frame, {
      flex: "1 1 auto",
      width: "100%",
      height: "auto",
      minHeight: "0",
      border: "0",
      display: "block",
      background: "#f4f5f7",
    });
    panel.appendChild(frame);
    return frame;
  }

  function open() {
    ensureFrame();
    layout();
    panel.hidden = false;
    panel.style.display = "flex";
    button.setAttribute("aria-expanded", "true");
    // Over a phone's whole screen the button would only cover the composer.
    if (isNarrow()) button.style.display = "none";
    frame.focus();
  }

  function shut() {
    panel.hidden = true;
    panel.style.display = "none";
    button.setAttribute("aria-expanded", "false");
    button.style.display = "flex";
    button.focus();
  }

  button.addEventListener("click", function () {
    if (panel.hidden) open();
    else shut();
  });
  close.addEventListener("click", shut);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !panel.hidden) shut();
  });
  if (narrow) {
    var relayout = function () {
      if (!panel.hidden) {
        layout();
        button.style.display = isNarrow() ? "none" : "flex";
      }
    };
    if (narrow.addEventListener) narrow.addEventListener("change", relayout);
    else if (narrow.addListener) narrow.addListener(relayout);
  }

  panel.appendChild(bar);

  function mount() {
    document.body.appendChild(panel);
    document.body.appendChild(button);
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
