/**
 * @mentions: the completion list in the composer, and highlighting in message text.
 * Mention tokens follow docs/protocol.md §9.1: a user id, "@<role>" or "@all".
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { avatar, roleLabel } from "./util.js";
import "./strings.js";

const ALL_ALIASES = ["all", "everyone", "所有人", "全体成员"];

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Whether a stored mention list reaches this user (their id, @all, or one of their roles).
 * @param {string[]} mentions
 * @param {object|null} me
 * @returns {boolean}
 */
export function mentionsMe(mentions, me) {
  if (!me || !Array.isArray(mentions)) return false;
  const roles = new Set((me.roles || []).map((r) => `@${r}`));
  return mentions.some((m) => m === me.id || m === "@all" || roles.has(m));
}

function tokenTexts(token, members) {
  if (token === "@all") return { texts: ALL_ALIASES.map((a) => `@${a}`), token };
  if (token.startsWith("@")) {
    const role = token.slice(1);
    return { texts: [`@${role}`, `@${roleLabel(role)}`], token };
  }
  const user = members && members.get ? members.get(token) : null;
  if (!user) return { texts: [], token };
  return {
    texts: [user.display_name && `@${user.display_name}`, user.username && `@${user.username}`].filter(Boolean),
    token,
  };
}

const URL_RE = "https?:\\/\\/[^\\s<>\"'（）【】，。！？]+";

/**
 * Message text as nodes: mentions highlighted (more strongly when they reach me) and
 * web addresses made into links. Never parses the text as markup.
 * @param {string} text
 * @param {string[]} mentions stored mention tokens
 * @param {Map<string, object>} members
 * @param {object|null} me
 * @returns {Node[]}
 */
export function richText(text, mentions, members, me) {
  const lookup = new Map();
  for (const token of mentions || []) {
    for (const s of tokenTexts(token, members).texts)
      if (!lookup.has(s.toLowerCase())) lookup.set(s.toLowerCase(), token);
  }
  const parts = Array.from(lookup.keys())
    .sort((a, b) => b.length - a.length)
    .map(escapeRe);
  const re = new RegExp(parts.length ? `(${URL_RE})|(${parts.join("|")})` : `(${URL_RE})`, "giu");
  const out = [];
  let last = 0;
  for (const match of text.matchAll(re)) {
    const start = match.index;
    if (match[2]) {
      const prev = start > 0 ? text[start - 1] : "";
      if (prev && /[A-Za-z0-9.]/.test(prev)) continue;
    }
    if (start > last) out.push(document.createTextNode(text.slice(last, start)));
    if (match[1]) {
      let url = match[1];
      const trail = url.match(/[.,;:!?)]+$/);
      if (trail) url = url.slice(0, -trail[0].length);
      out.push(h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow", class: "msg-link" }, url));
      last = start + url.length;
      continue;
    }
    const token = lookup.get(match[2].toLowerCase());
    const mine = mentionsMe([token], me);
    out.push(
      h("span", { class: mine ? "mention mention-me" : "mention", testid: "mention", dataset: { token } }, match[2]),
    );
    last = start + match[2].length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

/**
 * The @ completion attached to a textarea: people of the conversation and, for staff,
 * roles and @all. Picking an option inserts its text and remembers its token, so the
 * send can list the mention even where the server could not find it in the text.
 */
export class MentionPopup {
  /**
   * @param {{input: HTMLTextAreaElement, getOptions: () => Array<object>}} options
   *   getOptions returns [{type: "user"|"role"|"all", token, insert, label, sub, user?, id?}]
   */
  constructor({ input, getOptions }) {
    this.input = input;
    this.getOptions = getOptions;
    this.picked = new Map();
    this.items = [];
    this.active = 0;
    this.range = null;
    this.el = h("div", {
      class: "mention-popup",
      testid: "mention-popup",
      role: "listbox",
      hidden: true,
      "aria-label": t("comp.mentionPeople"),
    });
    this.el.addEventListener("mousedown", (event) => event.preventDefault());
    input.addEventListener("input", () => this.update());
    input.addEventListener("click", () => this.update());
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }

  /** Re-read the text before the caret and show or hide the list. */
  update() {
    const pos = this.input.selectionStart;
    if (pos !== this.input.selectionEnd) return this.close();
    const before = this.input.value.slice(0, pos);
    const m = before.match(/(^|[^A-Za-z0-9.])@([^\s@]{0,32})$/u);
    if (!m) return this.close();
    const query = m[2].toLowerCase();
    this.range = { start: pos - m[2].length - 1, end: pos };
    const all = this.getOptions();
    this.items = all.filter((o) => !query || o.search.some((s) => s.toLowerCase().includes(query))).slice(0, 12);
    if (this.items.length === 0) return this.close();
    this.active = 0;
    this.render();
    this.el.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    return undefined;
  }

  render() {
    clear(this.el);
    let group = null;
    this.items.forEach((o, i) => {
      const g = o.type === "user" ? "people" : "roles";
      if (g !== group) {
        group = g;
        this.el.appendChild(
          h("div", { class: "mention-group" }, t(g === "people" ? "comp.mentionPeople" : "comp.mentionRoles")),
        );
      }
      const item = h(
        "div",
        {
          class: i === this.active ? "mention-option active" : "mention-option",
          testid: "mention-option",
          role: "option",
          "aria-selected": i === this.active ? "true" : "false",
          dataset: { token: o.token },
          on: { click: () => this.pick(i) },
        },
        o.type === "user"
          ? avatar(o.user, o.token, "sm")
          : h("span", { class: "avatar avatar-sm avatar-role", "aria-hidden": "true" }, "@"),
        h("span", { class: "mention-label" }, o.label),
        o.sub ? h("span", { class: "mention-sub" }, o.sub) : null,
      );
      this.el.appendChild(item);
    });
  }

  /**
   * Let the list take arrow keys, Enter, Tab and Escape while it is open.
   * @param {KeyboardEvent} event
   * @returns {boolean} true when the key was used
   */
  handleKey(event) {
    if (this.el.hidden) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const n = this.items.length;
      this.active = (this.active + (event.key === "ArrowDown" ? 1 : n - 1)) % n;
      this.render();
      event.preventDefault();
      return true;
    }
    if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      event.preventDefault();
      this.pick(this.active);
      return true;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      this.close();
      return true;
    }
    return false;
  }

  pick(i) {
    const o = this.items[i];
    if (!o || !this.range) return;
    const value = this.input.value;
    const text = `@${o.insert} `;
    this.input.value = value.slice(0, this.range.start) + text + value.slice(this.range.end);
    const caret = this.range.start + text.length;
    this.input.setSelectionRange(caret, caret);
    this.picked.set(`@${o.insert}`, o.token);
    this.close();
    this.input.focus();
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  close() {
    this.el.hidden = true;
    this.range = null;
    this.input.setAttribute("aria-expanded", "false");
  }

  /**
   * The tokens of the picked mentions whose text is still in the message.
   * @param {string} text
   * @returns {string[]}
   */
  tokensFor(text) {
    const out = [];
    for (const [insert, token] of this.picked) {
      if (text.includes(insert) && !out.includes(token)) out.push(token);
    }
    return out;
  }

  /** Forget the picks after a send. */
  reset() {
    this.picked.clear();
    this.close();
  }
}
