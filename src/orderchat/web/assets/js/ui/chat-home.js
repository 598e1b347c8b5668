/**
 * The visitor's own list on `/chat`: their consults (newest first) and their orders,
 * a way to start another consult, and "continue on another device", which mails a
 * one-time link when the shop has a mail server (docs/consults.md §1).
 */

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { ApiError, api, errorText } from "../api.js";
import { fmtDateTime } from "../format.js";
import { newRef } from "../ref.js";
import { stateLabel } from "../workflow.js";
import { formDialog } from "./dialogs.js";
import { icon } from "./icons.js";
import { toast } from "./util.js";
import "./strings-chat.js";

const MAIL_OFF_KEY = "orderchat.chat.mailOff";

function mailKnownOff() {
  try {
    return sessionStorage.getItem(MAIL_OFF_KEY) === "1";
  } catch {
    return false;
  }
}

function rememberMailOff() {
  try {
    sessionStorage.setItem(MAIL_OFF_KEY, "1");
  } catch {
    // The button comes back after a reload and is hidden again at its next answer.
  }
}

/**
 * "Continue on another device": asks for the address to mail the link to (the one the
 * visitor gave, filled in). Hidden for good once the server says mail is not set up.
 * @param {{mailOff: boolean, session: object|null}} c the page
 * @returns {HTMLElement|null}
 */
export function emailLinkButton(c) {
  if (c.mailOff || mailKnownOff() || !c.session) return null;
  const sent = h("span", { class: "chat-mail-sent", testid: "consult-email-link-sent", role: "status", hidden: true });
  const button = h(
    "button",
    { type: "button", class: "btn btn-small chat-mail", testid: "consult-email-link" },
    h("span", null, t("ch.mail.button")),
  );
  const box = h("span", { class: "chat-mail-box" }, button, sent);
  button.addEventListener("click", () => {
    const me = c.session.user;
    const key = newRef();
    formDialog({
      title: t("ch.mail.title"),
      intro: h("p", null, t("ch.mail.intro")),
      submitLabel: t("ch.mail.send"),
      fields: [
        {
          name: "email",
          type: "email",
          label: t("ch.mail.email"),
          required: true,
          maxlength: 200,
          value: me.email || "",
        },
      ],
      onSubmit: async ({ email }) => {
        try {
          await api("/api/consults/email-link", { method: "POST", body: { email }, idempotencyKey: key });
        } catch (err) {
          if (err instanceof ApiError && err.status === 409) {
            // No mail server: the button goes, and says why once.
            c.mailOff = true;
            rememberMailOff();
            for (const el of document.querySelectorAll("[data-testid='consult-email-link']"))
              (el.closest(".chat-elsewhere") || el.closest(".chat-mail-box") || el).remove();
            toast(t("ch.mail.off"));
            return "off";
          }
          throw err;
        }
        return email;
      },
    }).then((result) => {
      if (!result || result === "off") return;
      sent.hidden = false;
      sent.textContent = t("ch.mail.sent", { email: result });
    });
  });
  return box;
}

function consultTitle(consult) {
  return consult.created_ts ? t("ch.consultOn", { time: fmtDateTime(consult.created_ts) }) : t("ch.consult");
}

function consultLine(consult) {
  if (consult.status === "queued")
    return consult.position ? t("ch.queue.position", { n: consult.position }) : t("ch.queue.waiting");
  if (consult.status === "open" && consult.assignee && consult.assignee.display_name)
    return t("ch.agent", { name: consult.assignee.display_name });
  if (consult.sku) return t("ch.aboutSku", { sku: consult.sku });
  return "";
}

function statusText(status) {
  const key = `ch.status.${status}`;
  return t(key) === key ? status : t(key);
}

/**
 * The list view.
 * @param {{me: object, consults: object[], orders: object[], embed: boolean,
 *          onOpen: (id: string) => void, onNew: () => Promise<void>, extra?: Node|null}} options
 * @returns {HTMLElement}
 */
export function homeView({ me, consults, orders, embed, onOpen, onNew, extra }) {
  const newBtn = h(
    "button",
    { type: "button", class: "btn btn-primary chat-new", testid: "consult-new" },
    icon("plus"),
    h("span", null, t("ch.new")),
  );
  newBtn.addEventListener("click", async () => {
    newBtn.disabled = true;
    try {
      await onNew();
    } catch (err) {
      toast(t("ch.newFailed", { message: errorText(err) }), "error");
    } finally {
      newBtn.disabled = false;
    }
  });
  const list = h("ul", { class: "chat-list", testid: "consult-list" });
  for (const consult of consults) {
    const line = consultLine(consult);
    list.append(
      h(
        "li",
        null,
        h(
          "button",
          {
            type: "button",
            class: "chat-item",
            testid: "consult-item",
            dataset: { consultId: consult.id, status: consult.status },
            on: { click: () => onOpen(consult.id) },
          },
          h(
            "span",
            { class: "chat-item-head" },
            h("span", { class: "chat-item-title" }, consultTitle(consult)),
            h("span", { class: "chat-status", dataset: { status: consult.status } }, statusText(consult.status)),
          ),
          line ? h("span", { class: "chat-item-line" }, line) : null,
        ),
      ),
    );
  }
  if (!consults.length) list.append(h("li", { class: "c-empty" }, t("ch.noConsults")));
  const sections = [
    h(
      "section",
      { class: "c-section chat-home-section" },
      h("h2", null, t("ch.myConsults")),
      h("p", { class: "c-me", testid: "me" }, t("ch.hello", { name: me.display_name || "" })),
      list,
      h("div", { class: "chat-home-actions" }, newBtn),
    ),
  ];
  if (orders.length) {
    const orderList = h("ul", { class: "chat-list", testid: "order-list" });
    for (const order of orders) {
      // The customer page, opened on this order with the same session (no invitation).
      orderList.append(
        h(
          "li",
          null,
          h(
            "a",
            {
              class: "chat-item",
              testid: "order-link",
              href: `/c?order=${encodeURIComponent(order.id)}`,
              // A framed page cannot show the order: it opens in its own tab.
              target: embed ? "_blank" : null,
              rel: embed ? "noopener" : null,
              dataset: { orderId: order.id },
            },
            h(
              "span",
              { class: "chat-item-head" },
              h("span", { class: "chat-item-title" }, t("ch.order", { number: order.number || order.id })),
              // A state's name needs its label (the brief may carry none): else nothing.
              order.status && order.status_label
                ? h("span", { class: "chat-status", dataset: { status: "order" } }, stateLabel(order, order.status))
                : null,
            ),
          ),
        ),
      );
    }
    sections.push(h("section", { class: "c-section chat-home-section" }, h("h2", null, t("ch.myOrders")), orderList));
  }
  if (extra) {
    sections.push(
      h("section", { class: "c-section chat-home-section chat-elsewhere" }, h("p", null, t("ch.mail.hint")), extra),
    );
  }
  return h("div", { class: "chat-home", testid: "consult-home" }, sections);
}
