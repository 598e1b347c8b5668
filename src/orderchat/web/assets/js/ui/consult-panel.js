/**
 * The side panel of a consult conversation (docs/consults.md): where the consult
 * stands, who the visitor is, where they came from, the customer's history (their
 * consults and orders, `GET /api/customers/{id}/history`), and what staff can do:
 * take, transfer (to a colleague or a role's queue, with a staff-only note), close,
 * block or unblock the visitor, and turn the consult into an order. Administrators can
 * also export the visitor's personal data as JSON and erase it (docs/consults.md §6).
 */

import { h, clear } from "../dom.js";
import { pickText, t, tOr } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtDateTime } from "../format.js";
import { icon } from "./icons.js";
import { confirmDialog, formDialog } from "./dialogs.js";
import { convOf, durationText, safeUrl, sourceText, statusChip, visitorName } from "./consults.js";
import { createOrderDialog } from "./consult-order.js";
import { sidePanel } from "./orderpanel.js";
import { isAdmin, onLang, roleLabel, toast } from "./util.js";
import "./strings-consults.js";

// Who may turn a consult into an order and block a visitor (docs/consults.md §7).
const SELLERS = ["customer_service", "sales", "admin"];

function section(title, testid, ...body) {
  return h("section", { class: "op-section", testid }, h("h3", { class: "op-title" }, title), ...body);
}

function dl(rows) {
  return h(
    "dl",
    { class: "op-dl" },
    rows
      .filter((r) => r && r[1] !== null && r[1] !== undefined && r[1] !== "")
      .map(([k, v, testid]) => [h("dt", k), h("dd", { testid: testid || null }, v)]),
  );
}

function yesNo(value) {
  return value ? t("cs.yes") : t("cs.no");
}

export class ConsultPanel {
  /**
   * @param {{me: object, convId: string, consult?: object|null, staff: () => object[],
   *          roles: string[], onOpenConv: (convId: string) => void,
   *          onOrder: (order: object) => void, onConsult?: (consult: object) => void,
   *          onClose?: () => void, knownOrder?: (convId: string) => object|undefined}} options
   *   `staff` lists the colleagues a consult may go to; `onConsult` hears the consult as
   *   an action left it (for the inbox); `onOrder` the order made from it; `knownOrder`
   *   the workspace's copy of an order (its status worded by the server).
   */
  constructor({ me, convId, consult, staff, roles, onOpenConv, onOrder, onConsult, onClose, knownOrder }) {
    this.me = me;
    this.convId = convId;
    this.consult = consult || null;
    this.staff = staff;
    this.roles = roles;
    this.onOpenConv = onOpenConv;
    this.onOrder = onOrder;
    this.onConsult = onConsult || null;
    this.onClose = onClose || null;
    this.knownOrder = knownOrder || (() => undefined);
    this.history = null;
    this.historyError = null;
    this.historyOf = null;
    this.error = null;
    this.busy = false;
    this.destroyed = false;
    Object.assign(
      this,
      sidePanel({
        className: "order-panel consult-panel",
        testid: "consult-panel",
        label: t("cs.panel"),
        closeLabel: t("cs.panelClose"),
        loading: t("cs.loading"),
        onClose: () => this.onClose && this.onClose(),
      }),
    );
    this.offLang = onLang(() => this.render());
    if (this.consult) this.render();
  }

  destroy() {
    this.destroyed = true;
    this.offLang();
  }

  /** Read the consult and the customer's history. */
  async load() {
    try {
      const consult = await api(`/api/consults/${encodeURIComponent(this.convId)}`);
      if (this.destroyed) return;
      this.consult = consult;
      this.error = null;
    } catch (err) {
      if (this.destroyed) return;
      this.error = err && err.status === 404 ? t("cs.notFound") : errorText(err);
    }
    this.render();
    if (this.consult && this.onConsult) this.onConsult(this.consult);
    this.loadHistory();
  }

  async loadHistory() {
    const visitor = this.consult && this.consult.visitor;
    if (!visitor || !visitor.id) return;
    try {
      const found = await api(`/api/customers/${encodeURIComponent(visitor.id)}/history`);
      if (this.destroyed) return;
      this.history = found || {};
      this.historyError = null;
    } catch (err) {
      if (this.destroyed) return;
      this.historyError = errorText(err);
    }
    this.historyOf = visitor.id;
    this.render();
  }

  /**
   * The consult changed (a live event, another panel's action): show it as it is now.
   * @param {object} consult
   */
  applyConsult(consult) {
    if (!consult || consult.id !== (this.consult ? this.consult.id : this.convId)) return;
    const orderBefore = this.consult && this.consult.order && this.consult.order.id;
    this.consult = { ...(this.consult || {}), ...consult };
    this.render();
    const orderNow = this.consult.order && this.consult.order.id;
    if (orderNow && orderNow !== orderBefore) this.loadHistory();
  }

  /** A message of the conversation: the inbox follows waits and events, and calls `applyConsult`. */
  applyMessage() {}

  /** An order frame (the workspace tells the open conversation's panel): nothing to show here. */
  applyOrder() {}

  render() {
    if (this.destroyed) return;
    this.el.setAttribute("aria-label", t("cs.panel"));
    this.closeBtn.title = t("cs.panelClose");
    this.closeBtn.setAttribute("aria-label", t("cs.panelClose"));
    if (!this.consult) {
      clear(this.body).append(
        this.error
          ? h("p", { class: "op-error", role: "alert" }, this.error)
          : h("p", { class: "op-loading" }, t("cs.loading")),
      );
      return;
    }
    const c = this.consult;
    this.el.dataset.status = c.status;
    this.el.dataset.consultId = c.id;
    clear(this.body).append(
      h(
        "div",
        { class: "op-head" },
        h("div", { class: "op-number", testid: "consult-visitor-name" }, visitorName(c)),
        h(
          "div",
          { class: "op-status-row" },
          statusChip(c),
          c.status === "queued" && c.position
            ? h("span", { class: "op-muted", testid: "consult-position" }, t("cs.position", { n: c.position }))
            : null,
          c.escalated_ts && c.status !== "closed"
            ? h("span", { class: "cs-escalated" }, icon("alert"), t("cs.escalated"))
            : null,
          c.visitor && c.visitor.erased
            ? h("span", { class: "cs-erased", testid: "consult-erased" }, t("cs.erasedChip"))
            : null,
        ),
      ),
      this.actions(c),
      this.stateSection(c),
      this.visitorSection(c),
      this.fromSection(c),
      this.historySection(c),
    );
  }

  stateSection(c) {
    const waited =
      typeof c.waiting_since_ts === "number" && c.status !== "closed"
        ? durationText(Date.now() - c.waiting_since_ts)
        : null;
    return section(
      t("cs.sec.state"),
      "consult-state",
      dl([
        [t("cs.field.agent"), c.assignee ? c.assignee.display_name || "" : t("cs.unassigned"), "consult-agent"],
        [t("cs.field.queue"), c.queue ? `${c.queue}${this.rolesText(c)}` : null, "consult-queue"],
        [t("cs.field.created"), c.created_ts ? fmtDateTime(c.created_ts) : null],
        [t("cs.field.waiting"), waited, "consult-waiting"],
        [t("cs.field.firstResponse"), c.first_response_ts ? fmtDateTime(c.first_response_ts) : null],
        [t("cs.field.closed"), c.closed_ts && c.status === "closed" ? fmtDateTime(c.closed_ts) : null],
        [
          t("cs.field.order"),
          c.order ? this.orderLink(c.order.number || c.order.id, c.order.conv || null, c.order.id) : null,
          "consult-order",
        ],
      ]),
    );
  }

  rolesText(c) {
    const roles = Array.isArray(c.roles) ? c.roles : c.role ? [c.role] : [];
    return roles.length ? ` · ${roles.map(roleLabel).join(" · ")}` : "";
  }

  visitorSection(c) {
    const v = c.visitor || {};
    return section(
      t("cs.sec.visitor"),
      "consult-visitor",
      dl([
        [t("cs.field.name"), v.display_name || null, "consult-visitor-display"],
        [t("cs.field.phone"), v.phone || null, "consult-visitor-phone"],
        [t("cs.field.email"), v.email || null, "consult-visitor-email"],
        [t("cs.field.language"), v.language ? tOr(`cs.lang.${v.language}`, v.language) : null],
        [t("cs.field.verified"), "verified" in v ? yesNo(v.verified) : null, "consult-visitor-verified"],
        [
          t("cs.field.blocked"),
          "blocked" in v
            ? h(
                "span",
                { class: v.blocked ? "cs-blocked" : null, dataset: { blocked: String(Boolean(v.blocked)) } },
                yesNo(v.blocked),
              )
            : null,
          "consult-visitor-blocked",
        ],
        [t("cs.field.erased"), v.erased ? yesNo(true) : null, "consult-visitor-erased"],
      ]),
    );
  }

  fromSection(c) {
    const href = c.page_url ? safeUrl(c.page_url) : null;
    const page = c.page_url
      ? href
        ? h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "cs-link" }, c.page_url)
        : c.page_url
      : null;
    return section(
      t("cs.sec.from"),
      "consult-from",
      dl([
        [t("cs.field.source"), c.source ? sourceText({ source: c.source }) : null, "consult-source"],
        [t("cs.field.tag"), c.tag || null, "consult-tag"],
        [t("cs.field.page"), page, "consult-page"],
        [t("cs.field.sku"), c.sku ? h("code", null, c.sku) : null, "consult-sku"],
      ]),
    );
  }

  historySection(c) {
    let body;
    if (this.historyError) {
      body = h("p", { class: "op-error" }, t("cs.history.failed", { message: this.historyError }));
    } else if (!this.history) {
      body = h("p", { class: "op-muted" }, t("common.loading"));
    } else {
      const consults = (this.history.consults || []).map((k) => ({
        kind: "consult",
        ts: k.created_ts || 0,
        item: k,
      }));
      const orders = (this.history.orders || []).map((o) => ({ kind: "order", ts: o.created_ts || 0, item: o }));
      const all = [...consults, ...orders].sort((a, b) => b.ts - a.ts);
      const others = all.filter((e) => !(e.kind === "consult" && e.item.id === c.id));
      body = others.length
        ? h(
            "ul",
            { class: "cs-history", testid: "consult-history-list" },
            all.map((e) => (e.kind === "consult" ? this.historyConsult(e.item, c) : this.historyOrder(e.item))),
          )
        : h("p", { class: "op-muted", testid: "consult-history-empty" }, t("cs.history.empty"));
    }
    return section(t("cs.sec.history"), "consult-history", body);
  }

  historyConsult(k, current) {
    const here = k.id === current.id;
    return h(
      "li",
      { class: "cs-history-item", testid: "consult-history-item", dataset: { kind: "consult", id: k.id } },
      h(
        "button",
        {
          type: "button",
          class: "cs-history-open",
          disabled: here,
          on: { click: () => this.onOpenConv(convOf(k)) },
        },
        h("span", { class: "cs-history-what" }, t("cs.history.consult")),
        statusChip(k, "consult-history-status"),
        h("span", { class: "op-muted" }, here ? t("cs.history.here") : k.created_ts ? fmtDateTime(k.created_ts) : ""),
      ),
    );
  }

  historyOrder(o) {
    return h(
      "li",
      { class: "cs-history-item", testid: "consult-history-item", dataset: { kind: "order", id: o.id } },
      this.orderLink(o.number || o.id, o.conv || null, o.id, o),
    );
  }

  /** A button that opens an order's conversation (found from the order when not given). */
  orderLink(number, conv, orderId, order) {
    return h(
      "button",
      {
        type: "button",
        class: "cs-history-open",
        testid: "consult-open-order",
        dataset: { orderId },
        on: { click: () => this.openOrder(conv, orderId) },
      },
      h("span", { class: "cs-history-what" }, t("cs.history.order", { number })),
      order && order.status
        ? h(
            "span",
            { class: "status-chip", dataset: { status: order.status } },
            pickText(order.status_label || (this.knownOrder(conv) || {}).status_label, order.status),
          )
        : null,
      order && order.created_ts ? h("span", { class: "op-muted" }, fmtDateTime(order.created_ts)) : null,
    );
  }

  async openOrder(conv, orderId) {
    if (conv) {
      this.onOpenConv(conv);
      return;
    }
    try {
      const order = await api(`/api/orders/${encodeURIComponent(orderId)}`);
      if (order && order.conv) this.onOpenConv(order.conv);
    } catch (err) {
      toast(t("cs.actionFailed", { message: errorText(err) }), "error");
    }
  }

  actions(c) {
    const roles = this.me.roles || [];
    const seller = isAdmin(this.me) || roles.some((r) => SELLERS.includes(r));
    const open = c.status !== "closed";
    const blocked = Boolean(c.visitor && c.visitor.blocked);
    const admin = isAdmin(this.me) && Boolean(c.visitor && c.visitor.id);
    const erased = Boolean(c.visitor && c.visitor.erased);
    const button = (key, testid, fn, cls = "btn btn-small") =>
      h("button", { type: "button", class: cls, testid, disabled: this.busy, on: { click: () => fn() } }, t(key));
    const buttons = [
      // Only a consult nobody owns can be taken; an owned one is transferred.
      open && !c.assignee ? button("cs.take", "consult-take", () => this.take(), "btn btn-small btn-primary") : null,
      open ? button("cs.transfer", "consult-transfer", () => this.transfer()) : null,
      seller ? button("cs.createOrder", "consult-create-order", () => this.createOrder()) : null,
      open ? button("cs.close", "consult-close", () => this.close()) : null,
      seller && c.visitor
        ? blocked
          ? button("cs.unblock", "consult-unblock", () => this.block(false))
          : button("cs.block", "consult-block", () => this.block(true), "btn btn-small btn-danger-outline")
        : null,
      admin ? button("cs.export", "consult-export", () => this.exportData()) : null,
      admin && !erased
        ? button("cs.erase", "consult-erase", () => this.erase(), "btn btn-small btn-danger-outline")
        : null,
    ].filter(Boolean);
    return buttons.length
      ? section(t("cs.sec.actions"), "consult-actions", h("div", { class: "op-actions" }, buttons))
      : null;
  }

  /** Run an action that answers with the consult; show it and tell the inbox. */
  async act(path, body, done) {
    if (this.busy) return null;
    this.busy = true;
    this.render();
    try {
      const answer = await api(`/api/consults/${encodeURIComponent(this.consult.id)}/${path}`, {
        method: "POST",
        body: body || {},
      });
      const consult = answer && answer.consult ? answer.consult : answer;
      if (consult && consult.id) {
        this.consult = { ...this.consult, ...consult };
        if (this.onConsult) this.onConsult(this.consult);
      }
      if (done) toast(done(this.consult));
      return consult;
    } catch (err) {
      toast(t("cs.actionFailed", { message: errorText(err) }), "error");
      return null;
    } finally {
      this.busy = false;
      this.render();
    }
  }

  take() {
    return this.act("take", {}, () => t("cs.taken"));
  }

  async transfer() {
    const people = this.staff()
      .filter((u) => u.id !== this.me.id && u.kind !== "customer" && u.kind !== "visitor" && !u.disabled)
      .sort((a, b) => (a.display_name || a.username || "").localeCompare(b.display_name || b.username || "", "zh-CN"));
    const roles = this.roles.filter((r) => r !== "admin");
    let target = "";
    const sent = await formDialog({
      title: t("cs.transferTitle"),
      fields: [
        {
          name: "to",
          label: t("cs.transferTo"),
          type: "select",
          value: "user",
          options: [
            { value: "user", label: t("cs.transferToUser") },
            { value: "role", label: t("cs.transferToRole") },
          ],
        },
        {
          name: "user",
          label: t("cs.transferUser"),
          type: "select",
          required: true,
          showIf: (v) => v.to !== "role",
          options: people.map((u) => ({
            value: u.id,
            label: `${u.display_name || u.username} · ${(u.roles || []).map(roleLabel).join(" ")}`,
          })),
        },
        {
          name: "role",
          label: t("cs.transferRole"),
          type: "select",
          required: true,
          showIf: (v) => v.to === "role",
          options: roles.map((r) => ({ value: r, label: roleLabel(r) })),
        },
        {
          name: "note",
          label: t("cs.transferNote"),
          type: "textarea",
          maxlength: 500,
          hint: t("cs.transferNoteHint"),
        },
      ],
      submitLabel: t("cs.transfer"),
      onSubmit: async (v) => {
        const body = {};
        if (v.to === "role") {
          body.to_role = v.role;
          target = roleLabel(v.role);
        } else {
          body.to_user = v.user;
          const person = people.find((u) => u.id === v.user);
          target = person ? person.display_name || person.username : "";
        }
        if (v.note) body.note = v.note;
        const answer = await api(`/api/consults/${encodeURIComponent(this.consult.id)}/transfer`, {
          method: "POST",
          body,
        });
        return answer || true;
      },
    });
    if (!sent) return;
    const consult = sent && sent.consult ? sent.consult : sent;
    if (consult && consult.id) {
      this.consult = { ...this.consult, ...consult };
      if (this.onConsult) this.onConsult(this.consult);
      this.render();
    }
    toast(t("cs.transferred", { name: target }));
  }

  async close() {
    const ok = await confirmDialog(t("cs.closeTitle"), t("cs.closeText"));
    if (ok) await this.act("close", {}, () => t("cs.closedDone"));
  }

  async block(on) {
    const v = this.consult.visitor;
    const name = v.display_name || t("cs.visitorFallback");
    if (on && !(await confirmDialog(t("cs.blockTitle", { name }), t("cs.blockText")))) return;
    this.busy = true;
    this.render();
    try {
      await api(`/api/visitors/${encodeURIComponent(v.id)}/block`, { method: on ? "POST" : "DELETE" });
      this.consult = { ...this.consult, visitor: { ...v, blocked: on } };
      if (this.onConsult) this.onConsult(this.consult);
      toast(t(on ? "cs.blockedDone" : "cs.unblockedDone", { name }));
    } catch (err) {
      toast(t("cs.actionFailed", { message: errorText(err) }), "error");
    } finally {
      this.busy = false;
      this.render();
    }
  }

  /** Admins: the visitor's personal data as a JSON file, named after their id. */
  async exportData() {
    const v = this.consult.visitor;
    if (this.busy || !v || !v.id) return;
    this.busy = true;
    this.render();
    try {
      const data = await api(`/api/visitors/${encodeURIComponent(v.id)}/export`);
      const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: `${v.id}.json`, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      toast(t("cs.exportDone"));
    } catch (err) {
      toast(t("cs.exportFailed", { message: errorText(err) }), "error");
    } finally {
      this.busy = false;
      this.render();
    }
  }

  /** Admins: blank the visitor's name, phone and e-mail and purge what they wrote. */
  async erase() {
    const v = this.consult.visitor;
    if (this.busy || !v || !v.id) return;
    const name = v.display_name || t("cs.visitorFallback");
    const ok = await formDialog({
      title: t("cs.eraseTitle", { name }),
      fields: [
        {
          type: "info",
          content: h(
            "div",
            { testid: "consult-erase-text" },
            h("p", t("cs.eraseText")),
            h("p", t("cs.eraseChain")),
            h("p", h("strong", t("cs.eraseFinal"))),
          ),
        },
      ],
      danger: true,
      submitLabel: t("cs.eraseSubmit"),
      onSubmit: async () => true,
    });
    if (ok !== true || this.destroyed) return;
    this.busy = true;
    this.render();
    try {
      const answer = await api(`/api/visitors/${encodeURIComponent(v.id)}/erase`, { method: "POST", body: {} });
      const messages = answer && typeof answer.messages === "number" ? answer.messages : 0;
      toast(t("cs.erasedDone", { name, messages }));
    } catch (err) {
      toast(t("cs.actionFailed", { message: errorText(err) }), "error");
      return;
    } finally {
      this.busy = false;
      this.render();
    }
    if (this.destroyed) return;
    this.history = null;
    await this.load();
  }

  async createOrder() {
    const answer = await createOrderDialog(this.consult);
    if (!answer || this.destroyed) return;
    const order = answer.order && answer.order.id ? answer.order : answer;
    toast(t("cs.order.done", { number: order.number || "" }));
    this.consult = { ...this.consult, order: { id: order.id, number: order.number, conv: order.conv } };
    if (this.onConsult) this.onConsult(this.consult);
    this.render();
    this.loadHistory();
    this.onOrder(order);
  }
}
