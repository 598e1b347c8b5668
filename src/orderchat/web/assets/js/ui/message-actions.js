/**
 * The parts of the message actions that are not the timeline itself: the edit dialog,
 * the conversation picker of a forward, the "forwarded from" line and the private card
 * that shows a query's answer (such as /stock) to the person who asked, with paging.
 *
 * The rules (who may edit until when, what may be forwarded where) are the server's;
 * this module only offers the actions the server is likely to accept, and shows its
 * refusals where the person can act on them.
 */

import { h, clear } from "../dom.js";
import { getLang, t } from "../i18n.js";
import { fmtTime } from "../format.js";
import { formDialog } from "./dialogs.js";
import "./strings.js";
import "./strings-messages.js";

/** The same window as a recall (core/policy.py DEFAULT_RECALL_WINDOW_S). */
export const EDIT_WINDOW_MS = 120 * 1000;
const EDITABLE_KINDS = new Set(["text", "image", "voice", "video", "file"]);
const FORWARDABLE_KINDS = EDITABLE_KINDS;

/**
 * Whether `me` may still edit `m`: one's own, written by a person, not recalled, in the window.
 * @param {object} m
 * @param {object} me
 * @returns {boolean}
 */
export function mayEdit(m, me) {
  return Boolean(
    m && m.seq && !m.recalled && m.sender === me.id && EDITABLE_KINDS.has(m.kind) && Date.now() - m.ts < EDIT_WINDOW_MS,
  );
}

/**
 * Whether `m` is something a person wrote that can travel to another conversation.
 * @param {object} m
 * @returns {boolean}
 */
export function mayForward(m) {
  return Boolean(m && m.seq && !m.recalled && !m.purged && FORWARDABLE_KINDS.has(m.kind));
}

/**
 * Ask for the new text of a message and run `save(text)` in the dialog, so a refusal
 * is shown next to the text.
 * @param {object} m the message as shown
 * @param {(text: string) => Promise<*>} save
 * @returns {Promise<*>} what save returned, or null when cancelled
 */
export function editDialog(m, save) {
  return formDialog({
    title: t("msgs.editTitle"),
    submitLabel: t("msgs.editSave"),
    fields: [
      {
        name: "text",
        label: t("msgs.editText"),
        type: "textarea",
        rows: 4,
        maxlength: 10000,
        value: m.text || "",
        hint: t("msgs.editHint"),
      },
    ],
    onSubmit: async (values) => {
      const text = values.text || "";
      if (m.kind === "text" && !text.trim()) throw { userMessage: t("msgs.editEmpty") };
      try {
        return await save(text);
      } catch (err) {
        throw { userMessage: (err && err.message) || String(err) };
      }
    },
  });
}

/**
 * Pick the conversation to forward into: a searchable list, and for staff whether the
 * forward is a staff-only note.
 * @param {{conversations: Array<{id: string, title: string, kind: string}>, staff: boolean,
 *          internal?: boolean, send: (conv: object, internal: boolean) => Promise<*>}} spec
 * @returns {Promise<object|null>} the chosen conversation once sent, or null when cancelled
 */
export function forwardPicker(spec) {
  return new Promise((resolve) => {
    let chosen = null;
    const search = h("input", {
      type: "search",
      class: "fwd-search",
      testid: "forward-search",
      placeholder: t("msgs.forwardSearch"),
      "aria-label": t("msgs.forwardSearch"),
      autocomplete: "off",
    });
    const list = h("ul", { class: "fwd-list", testid: "forward-list", role: "listbox" });
    const internal = h("input", { type: "checkbox", testid: "forward-internal", checked: Boolean(spec.internal) });
    const errorBox = h("p", { class: "dlg-error", testid: "dialog-error", role: "alert", hidden: true });
    const send = h(
      "button",
      { type: "submit", class: "btn btn-primary", testid: "forward-send", disabled: true },
      t("msgs.forwardSend"),
    );
    const cancel = h("button", { type: "button", class: "btn", testid: "dialog-cancel" }, t("dlg.cancel"));
    const draw = () => {
      const q = search.value.trim().toLowerCase();
      clear(list);
      const found = spec.conversations.filter((c) => !q || (c.title || "").toLowerCase().includes(q));
      if (found.length === 0) list.append(h("li", { class: "fwd-none" }, t("msgs.forwardNone")));
      for (const c of found) {
        const item = h(
          "li",
          {
            class: chosen && chosen.id === c.id ? "fwd-item is-chosen" : "fwd-item",
            role: "option",
            testid: "forward-option",
            tabindex: "0",
            "aria-selected": chosen && chosen.id === c.id ? "true" : "false",
            dataset: { conv: c.id },
          },
          c.title,
        );
        const pick = () => {
          chosen = c;
          send.disabled = false;
          draw();
        };
        item.addEventListener("click", pick);
        item.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            pick();
          }
        });
        list.append(item);
      }
    };
    const form = h(
      "form",
      { method: "dialog", class: "dlg-form", novalidate: true },
      h("header", { class: "dlg-head" }, h("h2", { class: "dlg-title" }, t("msgs.forwardTitle"))),
      h(
        "div",
        { class: "dlg-body" },
        search,
        list,
        spec.staff ? h("label", { class: "dlg-row dlg-check" }, internal, " ", t("msgs.forwardInternal")) : null,
        errorBox,
      ),
      h("footer", { class: "dlg-foot" }, cancel, send),
    );
    const dialog = h(
      "dialog",
      { class: "dlg dlg-forward", testid: "dialog", "aria-label": t("msgs.forwardTitle") },
      form,
    );
    const finish = (value) => {
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(value);
    };
    search.addEventListener("input", draw);
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(null);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!chosen) return;
      send.disabled = true;
      errorBox.hidden = true;
      try {
        await spec.send(chosen, spec.staff && internal.checked);
        finish(chosen);
      } catch (err) {
        errorBox.textContent = t("msgs.forwardFailed", { message: (err && err.message) || String(err) });
        errorBox.hidden = false;
        send.disabled = false;
      }
    });
    draw();
    document.body.appendChild(dialog);
    dialog.showModal();
    search.focus();
  });
}

/**
 * The line above a forwarded message: from whom (and where, when the reader may know),
 * with a link to the original that opens it for those who may see it.
 * @param {object} m a message with `forwarded_from`
 * @param {(link: object) => void} [onOpen]
 * @returns {HTMLElement|null}
 */
export function forwardedLine(m, onOpen) {
  const link = m.forwarded_from;
  if (!link) return null;
  const name = link.sender_name || "";
  const label = link.title ? t("msgs.forwardedFromIn", { name, title: link.title }) : t("msgs.forwardedFrom", { name });
  return h(
    "div",
    { class: "msg-forwarded", testid: "msg-forwarded", dataset: { conv: link.conv, seq: link.seq } },
    h("span", label),
    onOpen
      ? h(
          "button",
          { type: "button", class: "link-btn", testid: "msg-forwarded-open", on: { click: () => onOpen(link) } },
          t("msgs.openOriginal"),
        )
      : null,
  );
}

/**
 * The "edited" mark beside a message's time.
 * @param {object} m
 * @returns {HTMLElement|null}
 */
export function editedMark(m) {
  if (!m.edited_ts || m.recalled) return null;
  return h(
    "span",
    { class: "msg-edited", testid: "msg-edited", title: t("msgs.editedAt", { time: fmtTime(m.edited_ts) }) },
    t("msgs.edited"),
  );
}

function stockItem(item) {
  const zh = getLang() === "zh-CN";
  const name = zh ? item.name_zh || item.name_en : item.name_en || item.name_zh;
  const levels = Array.isArray(item.levels) ? item.levels : [];
  return h(
    "li",
    { class: "cmd-item", testid: "command-item", dataset: { sku: item.sku } },
    h("div", { class: "cmd-item-head" }, h("strong", item.sku), " ", name || ""),
    h("div", { class: "cmd-item-total" }, t("msgs.stockTotals", item)),
    levels.length
      ? h(
          "ul",
          { class: "cmd-levels" },
          levels.map((lv) => h("li", t("msgs.stockLevel", lv))),
        )
      : h("div", { class: "cmd-levels" }, t("msgs.stockNoLevels")),
  );
}

function stockBody(reply) {
  if (!reply.query) return [h("p", t("msgs.stockUsage"))];
  if (!reply.total) return [h("p", t("msgs.stockNone", { query: reply.query }))];
  return [
    h("p", { class: "cmd-head" }, t("msgs.stockHeader", { query: reply.query, total: reply.total })),
    h(
      "ul",
      { class: "cmd-items" },
      (reply.items || []).map((item) => stockItem(item)),
    ),
  ];
}

/**
 * The private card of a query's answer, with previous and next buttons that ask for
 * the neighbouring pages (`ask(command)`), and a button that dismisses it.
 * @param {object} reply a `command_reply` frame
 * @param {{ask: (command: string) => void, dismiss: () => void}} actions
 * @returns {HTMLElement}
 */
export function commandCard(reply, actions) {
  const body =
    reply.command === "stock" ? stockBody(reply) : [h("pre", { class: "cmd-lines" }, (reply.lines || []).join("\n"))];
  const pager =
    reply.pages > 1
      ? h(
          "div",
          { class: "cmd-pager" },
          h(
            "button",
            {
              type: "button",
              class: "btn btn-small",
              testid: "command-prev",
              disabled: !reply.prev,
              on: { click: () => reply.prev && actions.ask(reply.prev) },
            },
            t("msgs.prevPage"),
          ),
          h("span", { class: "cmd-page", testid: "command-page" }, t("msgs.pageOf", reply)),
          h(
            "button",
            {
              type: "button",
              class: "btn btn-small",
              testid: "command-next",
              disabled: !reply.next,
              on: { click: () => reply.next && actions.ask(reply.next) },
            },
            t("msgs.nextPage"),
          ),
        )
      : null;
  return h(
    "section",
    {
      class: "cmd-card",
      testid: "command-card",
      "aria-label": t("msgs.privateCard"),
      dataset: { command: reply.command, query: reply.query, page: reply.page },
    },
    h(
      "header",
      { class: "cmd-card-head" },
      h("span", { class: "badge badge-private", testid: "command-private" }, t("msgs.privateCard")),
      h(
        "button",
        { type: "button", class: "link-btn", testid: "command-dismiss", on: { click: () => actions.dismiss() } },
        t("msgs.dismiss"),
      ),
    ),
    body,
    pager,
  );
}
