/**
 * Small helpers the chat views share: names, avatars, message previews, toasts.
 */

import { h } from "../dom.js";
import { pickText, t, tOr } from "../i18n.js";
import { fmtDay, fmtTime } from "../format.js";
import { sayText } from "../texts.js";
import { callSummary } from "./call-record.js";
import { productFacts, productName } from "./product-card.js";
import "./strings.js";
import "./strings-evidence.js";

/**
 * The name to show for a user id, falling back to something readable when the
 * person is not in the directory (a customer, or someone who left).
 * @param {Map<string, object>} members
 * @param {string} id
 * @returns {string}
 */
export function userName(members, id) {
  const user = members && members.get ? members.get(id) : null;
  if (!user) return t("user.unknown");
  return user.display_name || user.username || t("user.unknown");
}

/**
 * A role's name in the interface language (server role names are English identifiers).
 * @param {string} role
 * @returns {string}
 */
export function roleLabel(role) {
  return tOr(`role.${role}`, role);
}

/**
 * Whether a user is staff; customers get a simpler interface.
 * @param {object|null} user
 * @returns {boolean}
 */
export function isStaff(user) {
  return Boolean(user) && user.kind !== "customer" && user.kind !== "visitor";
}

/**
 * Whether a user holds the admin role.
 * @param {object|null} user
 * @returns {boolean}
 */
export function isAdmin(user) {
  return Boolean(user && Array.isArray(user.roles) && user.roles.includes("admin"));
}

function hue(id) {
  let n = 0;
  for (const ch of String(id || "")) n = (n * 31 + ch.charCodeAt(0)) % 360;
  return n;
}

/**
 * A round avatar with the person's last character (Chinese names read best that way)
 * or first letter, tinted from the id so the same person keeps the same colour.
 * @param {object|null} user
 * @param {string} id
 * @param {string} [size] "sm" | "md" | "lg"
 * @returns {HTMLElement}
 */
export function avatar(user, id, size = "md") {
  const name = (user && (user.display_name || user.username)) || "?";
  const parts = name.trim().split(/\s+/);
  const last = parts[parts.length - 1] || "?";
  const isCjk = /[\u3400-\u9fff]/.test(last);
  const letter = isCjk ? last.slice(-1) : last.slice(0, 1).toUpperCase();
  return h(
    "span",
    { class: `avatar avatar-${size}`, "aria-hidden": "true", style: { "--hue": String(hue(id)) } },
    letter,
  );
}

/**
 * One line that stands for a message in lists and quotes ("[图片] 样品" …).
 * @param {object|null} message
 * @returns {string}
 */
export function previewText(message) {
  if (!message) return "";
  if (message.recalled) return t("kind.recalled");
  if (message.purged) return t("kind.purged");
  // A call's record is worded here from its meta, in the reader's language.
  if (message.kind === "call" && message.meta) return `${t("kind.call")} ${callSummary(message)}`;
  if (message.kind === "product" && message.meta && message.meta.product) {
    const facts = productFacts(message.meta.product);
    return `${t("kind.product")} ${productName(facts.name, facts.sku)}`;
  }
  const label = { image: "kind.image", voice: "kind.voice", video: "kind.video", file: "kind.file", call: "kind.call" }[
    message.kind
  ];
  const text = message.meta ? storedText(message) : message.text || "";
  if (label) {
    const names = (message.attachments || []).map((a) => a.name).filter(Boolean);
    const caption = text || (message.kind === "file" ? names.join(" ") : "");
    return caption ? `${t(label)} ${caption}` : t(label);
  }
  return text.replace(/\s+/g, " ").trim();
}

/**
 * A stored message's text in the interface language: its `meta.say` (catalogue texts),
 * else its `meta.text` per language (order events, the finance digest), else its text.
 * @param {{text?: string, meta?: {say?: *, text?: *}}} message
 * @returns {string}
 */
export function storedText(message) {
  const meta = message.meta || {};
  if (meta.say) return sayText(meta.say, message.text || "");
  if (meta.text && typeof meta.text === "object") return pickText(meta.text, message.text || "");
  return message.text || "";
}

/**
 * A compact time for a list row: the clock time today, else the day.
 * @param {number} ts
 * @returns {string}
 */
export function shortWhen(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return fmtTime(ts);
  return fmtDay(ts);
}

let toastRoot = null;

/**
 * A short notice at the bottom of the screen, announced to screen readers.
 * @param {string} text
 * @param {"info"|"error"} [kind]
 */
export function toast(text, kind = "info") {
  if (!toastRoot || !toastRoot.isConnected) {
    toastRoot = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    document.body.appendChild(toastRoot);
  }
  const item = h("div", { class: `toast toast-${kind}`, testid: "toast" }, text);
  toastRoot.appendChild(item);
  setTimeout(() => item.classList.add("leaving"), kind === "error" ? 5200 : 3200);
  setTimeout(() => item.remove(), kind === "error" ? 5600 : 3600);
}

/**
 * Run `fn` whenever the interface language changes; returns the way to stop.
 * @param {() => void} fn
 * @returns {() => void}
 */
export function onLang(fn) {
  window.addEventListener("langchange", fn);
  return () => window.removeEventListener("langchange", fn);
}

/**
 * The kind of message a file is sent as (docs/media.md §3).
 * @param {File} file
 * @returns {"image"|"video"|"voice"|"file"}
 */
export function kindForFile(file) {
  const type = (file && file.type) || "";
  if (type.startsWith("image/") && type !== "image/svg+xml") return "image";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "voice";
  return "file";
}
