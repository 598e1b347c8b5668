/**
 * What a page says without its server: that it is offline, that what is written is
 * kept on this device, and the sends still waiting, each with where it goes.
 *
 * A page the service worker opened from its copy has nothing but localStorage, so the
 * titles of the conversations with waiting sends are kept there too, next to the
 * outbox (socket.js), while the server can still name them.
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import "./strings-pwa.js";

const titlesKey = (userId) => `orderchat.pending-titles.${userId}`;

/**
 * Keep the titles of the conversations that have sends waiting, and only those.
 * @param {string} userId
 * @param {object[]} pending the outbox's `send` frames
 * @param {(conv: string) => (string|null)} titleOf the title known now, if any
 */
export function rememberTitles(userId, pending, titleOf) {
  const before = storedTitles(userId);
  const titles = {};
  for (const frame of pending) {
    const title = titleOf(frame.conv) || before[frame.conv];
    if (title) titles[frame.conv] = title;
  }
  if (JSON.stringify(titles) === JSON.stringify(before)) return;
  try {
    if (Object.keys(titles).length) localStorage.setItem(titlesKey(userId), JSON.stringify(titles));
    else localStorage.removeItem(titlesKey(userId));
  } catch (err) {
    console.warn("conversation titles not kept", err);
  }
}

/**
 * @param {string} userId
 * @returns {Object<string, string>} conversation id → title
 */
export function storedTitles(userId) {
  try {
    const found = JSON.parse(localStorage.getItem(titlesKey(userId)) || "{}");
    return found && typeof found === "object" && !Array.isArray(found) ? found : {};
  } catch {
    return {};
  }
}

/** On sign-out, with the outbox: a shared computer keeps nothing of the person. */
export function forgetTitles(userId) {
  try {
    localStorage.removeItem(titlesKey(userId));
  } catch {
    // Nothing stored that could be removed.
  }
}

/**
 * The sends waiting, with a heading that counts them.
 * @param {object[]} pending the outbox's `send` frames
 * @param {(conv: string) => string} titleOf
 * @returns {HTMLElement}
 */
export function pendingList(pending, titleOf) {
  return h(
    "div",
    { class: "offline-pending" },
    h(
      "p",
      { class: "offline-pending-head" },
      pending.length ? t("pwa.offline.pending", { count: pending.length }) : t("pwa.offline.nothingPending"),
    ),
    pending.length
      ? h(
          "ul",
          { class: "offline-pending-list", testid: "offline-pending" },
          pending.map((frame) =>
            h(
              "li",
              { class: "offline-pending-item", testid: "offline-pending-item", dataset: { conv: frame.conv } },
              h("span", { class: "offline-pending-conv", testid: "offline-pending-conv" }, titleOf(frame.conv)),
              h("span", { class: "offline-pending-text", testid: "offline-pending-text" }, pendingText(frame)),
            ),
          ),
        )
      : null,
  );
}

function pendingText(frame) {
  const parts = [];
  if (typeof frame.text === "string" && frame.text.trim()) parts.push(frame.text);
  if (frame.forward) parts.push(t("pwa.offline.forward"));
  if (Array.isArray(frame.attachments) && frame.attachments.length) parts.push(t("pwa.offline.attachment"));
  return parts.join(" ");
}

/** The staff workspace's bar under the header while it has no server. */
export class OfflineNotice {
  constructor() {
    this.el = h("section", { class: "offline-notice", testid: "offline-notice", hidden: true });
  }

  /**
   * @param {{reason: "network"|"server"|null, pending: object[], titleOf: (conv: string) => string}} state
   *   `reason` null hides the notice
   */
  update({ reason, pending, titleOf }) {
    this.el.hidden = !reason;
    this.el.dataset.reason = reason || "";
    clear(this.el);
    if (!reason) return;
    this.el.append(
      h(
        "p",
        { class: "offline-title", role: "status" },
        t(reason === "network" ? "pwa.offline.noNetwork" : "pwa.offline.noServer"),
      ),
      h("p", { class: "offline-text" }, t("pwa.offline.text")),
      pendingList(pending, titleOf),
    );
  }
}
