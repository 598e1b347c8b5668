/**
 * An order's legal hold in the order panel: the badge everyone on staff sees while it
 * is set, and the admins' switch (`POST /api/orders/{id}/legal-hold`). An order on
 * legal hold is never purged by the retention rules (docs/proof.md).
 */

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { icon } from "./icons.js";
import { isAdmin, toast } from "./util.js";
import "./strings-evidence.js";

/**
 * The "on legal hold" badge, or null when the order is not held.
 * @param {{legal_hold?: boolean}} order
 * @returns {HTMLElement|null}
 */
export function legalHoldBadge(order) {
  if (!order || !order.legal_hold) return null;
  return h("span", { class: "hold-badge", testid: "order-legal-hold-badge" }, icon("lock"), t("hold.on"));
}

/**
 * The admins' section with the switch; null for everyone else.
 * @param {{id: string, number: string, legal_hold?: boolean}} order
 * @param {object} me
 * @param {(order: object) => void} onChanged given the order as the server answers
 * @returns {HTMLElement|null}
 */
export function legalHoldView(order, me, onChanged) {
  if (!order || !isAdmin(me)) return null;
  const held = Boolean(order.legal_hold);
  const button = h(
    "button",
    {
      type: "button",
      class: held ? "btn btn-small hold-switch on" : "btn btn-small hold-switch",
      role: "switch",
      "aria-checked": held ? "true" : "false",
      testid: "order-legal-hold",
      dataset: { held: held ? "true" : "false" },
    },
    h("span", { class: "hold-knob", "aria-hidden": "true" }),
    h("span", null, t(held ? "hold.clear" : "hold.set")),
  );
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const answer = await api(`/api/orders/${encodeURIComponent(order.id)}/legal-hold`, {
        method: "POST",
        body: { hold: !held },
      });
      toast(t(held ? "hold.clearDone" : "hold.setDone", { number: order.number }));
      onChanged({ ...(answer || {}), legal_hold: answer && "legal_hold" in answer ? answer.legal_hold : !held });
    } catch (err) {
      toast(t("hold.failed", { message: errorText(err) }), "error");
      button.disabled = false;
    }
  });
  return h(
    "section",
    { class: "op-section", testid: "order-legal-hold-section" },
    h("h3", { class: "op-title" }, t("hold.title")),
    h("p", { class: "op-muted" }, t("hold.hint")),
    h("div", { class: "op-actions" }, button),
  );
}
