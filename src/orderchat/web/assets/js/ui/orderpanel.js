/**
 * The side panel of an order conversation: where the order stands, what it holds (with
 * live stock), money and invoice, confirmations, exceptions, and the actions this user
 * may take. The buttons come from the order's `allowed` field, so the panel offers
 * exactly what the server would accept (docs/orders.md).
 */

import { h, clear } from "../dom.js";
import { pickText, t, tOr } from "../i18n.js";
import { itemNameView } from "../products.js";
import { api, errorText } from "../api.js";
import { fmtAddress, fmtDateTime, fmtMoney } from "../format.js";
import { newRef } from "../ref.js";
import { uploadFile } from "../upload.js";
import { leavesPath, stateLabel, transitionOf, workflowOf } from "../workflow.js";
import { icon } from "./icons.js";
import { formDialog, infoDialog } from "./dialogs.js";
import { orderProgress } from "./progress.js";
import { dossierView } from "./dossier.js";
import { legalHoldBadge, legalHoldView } from "./legal-hold.js";
import { isAdmin, onLang, toast, userName } from "./util.js";
import "./strings.js";
import "./strings-webfix.js";
import "./strings-photos.js";

const ADDRESS_FIELDS = ["name", "phone", "country", "region", "city", "district", "line1", "postcode"];
const CONFIRMATION_KINDS = [
  "material",
  "colour",
  "size",
  "logo_process",
  "packaging",
  "lead_time",
  "shipping_method",
  "custom",
];
const PAYMENT_METHODS = ["bank_transfer", "alipay", "wechat", "cash", "card", "other"];
const ISSUE_SETTLERS = {
  out_of_stock: ["purchasing", "customer_service"],
  address_change_requested: ["logistics"],
  delay_risk: ["customer_service"],
  delay_notice: ["customer_service"],
  defect_found: ["customer_service"],
};

function digitsOf(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

function toCents(text, currency) {
  const clean = String(text || "").replace(/[,\s¥$€£]/g, "");
  if (!/^\d+(\.\d+)?$/.test(clean)) return null;
  const cents = Math.round(Number(clean) * 10 ** digitsOf(currency));
  return cents > 0 ? cents : null;
}

function fromCents(cents, currency) {
  const d = digitsOf(currency);
  return (cents / 10 ** d).toFixed(d);
}

function userError(text) {
  const err = new Error(text);
  err.userMessage = text;
  return err;
}

function section(title, testid, ...body) {
  return h("section", { class: "op-section", testid }, h("h3", { class: "op-title" }, title), ...body);
}

function dl(rows) {
  return h(
    "dl",
    { class: "op-dl" },
    rows
      .filter((r) => r && r[1] !== null && r[1] !== undefined && r[1] !== "")
      .map(([k, v]) => [h("dt", k), h("dd", v)]),
  );
}

/**
 * The shell every side panel beside a conversation shares: an aside with a close
 * button and a body that says it is loading until the panel renders.
 * @param {{className: string, testid: string, label: string, closeLabel: string,
 *   loading: string, onClose: () => void}} spec
 * @returns {{el: HTMLElement, body: HTMLElement, closeBtn: HTMLElement}}
 */
export function sidePanel({ className, testid, label, closeLabel, loading, onClose }) {
  const body = h("div", { class: "op-body" }, h("p", { class: "op-loading" }, loading));
  const closeBtn = h(
    "button",
    {
      type: "button",
      class: "icon-btn op-close",
      testid: `${testid}-close`,
      "aria-label": closeLabel,
      title: closeLabel,
      on: { click: onClose },
    },
    icon("close"),
  );
  const el = h("aside", { class: className, testid, "aria-label": label }, closeBtn, body);
  return { el, body, closeBtn };
}

export class OrderPanel {
  /**
   * @param {{me: object, orderId: string|null, conv: object, members: Map<string, object>,
   *          realtime?: object, onClose?: () => void}} options
   */
  constructor({ me, orderId, conv, members, realtime, onClose }) {
    this.me = me;
    this.orderId = orderId;
    this.conv = conv;
    this.members = members;
    this.realtime = realtime || null;
    this.onClose = onClose || null;
    this.order = null;
    this.confirmations = [];
    this.stock = new Map();
    this.history = [];
    this.customer = null;
    this.error = null;
    this.destroyed = false;
    this.refetchTimer = null;
    Object.assign(
      this,
      sidePanel({
        className: "order-panel",
        testid: "order-panel",
        label: t("order.panel"),
        closeLabel: t("order.close"),
        loading: t("order.loading"),
        onClose: () => this.onClose && this.onClose(),
      }),
    );
    this.offLang = onLang(() => this.render());
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.refetchTimer);
    this.offLang();
  }

  /** Fetch the order and everything the panel shows about it. */
  async load() {
    if (this.error) {
      this.error = null;
      clear(this.body).append(h("p", { class: "op-loading" }, t("order.loading")));
    }
    try {
      if (!this.orderId) this.orderId = await this.findOrderId();
      if (!this.orderId) {
        this.error = t("order.notFound");
        this.render();
        return;
      }
      const order = await api(`/api/orders/${encodeURIComponent(this.orderId)}`);
      if (this.destroyed) return;
      this.order = order;
      this.render();
      await Promise.all([this.loadConfirmations(), this.loadStock(), this.loadHistory(), this.loadCustomer()]);
      if (!this.destroyed) this.render();
    } catch (err) {
      if (this.destroyed) return;
      this.error = t("order.loadFailed", { message: errorText(err) });
      this.render();
    }
  }

  async findOrderId() {
    const page = await api(`/api/conversations/${encodeURIComponent(this.conv.id)}/messages?after=0&limit=5`);
    for (const m of (page && page.messages) || []) if (m.meta && m.meta.order) return m.meta.order;
    return null;
  }

  async refetch() {
    try {
      const order = await api(`/api/orders/${encodeURIComponent(this.orderId)}`);
      if (this.destroyed) return;
      this.order = order;
      this.render();
    } catch (err) {
      console.warn("order not refreshed", err);
    }
  }

  async loadConfirmations() {
    try {
      const body = await api(`/api/orders/${encodeURIComponent(this.orderId)}/confirmations`);
      this.confirmations = (body && body.items) || [];
    } catch (err) {
      this.confirmations = [];
      console.warn("confirmations not loaded", err);
    }
  }

  canViewStock() {
    const actions = (this.order && this.order.allowed && this.order.allowed.actions) || null;
    if (actions) return actions.includes("view_stock");
    return this.me.kind !== "customer";
  }

  async loadStock() {
    if (!this.order || !this.canViewStock()) return;
    const skus = Array.from(new Set((this.order.items || []).map((i) => i.sku)));
    await Promise.all(
      skus.map(async (sku) => {
        try {
          const s = await api(`/api/skus/${encodeURIComponent(sku)}`);
          this.stock.set(sku, s);
        } catch {
          this.stock.set(sku, null);
        }
      }),
    );
  }

  async loadHistory() {
    const events = [];
    let after = 0;
    try {
      for (let page = 0; page < 10; page += 1) {
        const body = await api(
          `/api/conversations/${encodeURIComponent(this.order.conv)}/messages?after=${after}&limit=200`,
        );
        const list = (body && body.messages) || [];
        for (const m of list) if (m.kind === "order_event") events.push(m);
        if (list.length < 200) break;
        after = list[list.length - 1].seq;
      }
    } catch (err) {
      console.warn("order history not loaded", err);
    }
    this.history = events;
  }

  async loadCustomer() {
    if (!this.order || !this.order.customer) return;
    const known = this.members.get(this.order.customer);
    if (known) {
      this.customer = known;
      return;
    }
    try {
      const c = await api(`/api/customers/${encodeURIComponent(this.order.customer)}`);
      this.customer = c;
      if (c && !this.members.has(this.order.customer)) {
        this.members.set(this.order.customer, {
          id: this.order.customer,
          display_name: c.name || c.display_name,
          kind: "customer",
          roles: [],
        });
      }
    } catch {
      this.customer = null;
    }
  }

  /**
   * A new copy of the order from an `order` event. The event leaves out what only
   * `GET /api/orders/{id}` carries (`allowed`, `issues`, `workflow_detail`): the copy
   * keeps the last of those until the refetch brings them.
   * @param {object} order
   */
  applyOrder(order) {
    if (!order || (this.orderId && order.id !== this.orderId)) return;
    this.orderId = order.id;
    const prev = this.order || {};
    this.order = { ...prev, ...order };
    this.render();
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => {
      this.refetch();
      this.loadStock().then(() => !this.destroyed && this.render());
    }, 250);
  }

  /**
   * A message in the order's conversation: order events extend the progress list and
   * may change confirmations.
   * @param {object} m
   */
  applyMessage(m) {
    if (m.kind !== "order_event" || !m.meta) return;
    if (!this.history.some((x) => x.seq === m.seq)) this.history.push(m);
    const ev = m.meta.event || "";
    if (ev.startsWith("confirmation_")) this.loadConfirmations().then(() => !this.destroyed && this.render());
    else this.render();
  }

  allowed() {
    const a = (this.order && this.order.allowed) || {};
    return {
      transitions: a.transitions || [],
      actions: a.actions || [],
      issueKinds: a.issue_kinds || Object.keys(ISSUE_SETTLERS),
    };
  }

  can(action) {
    return this.allowed().actions.includes(action);
  }

  stateLabel(name) {
    return stateLabel(this.order, name);
  }

  // ---- rendering -------------------------------------------------------------------

  render() {
    if (this.destroyed) return;
    this.closeBtn.setAttribute("aria-label", t("order.close"));
    this.el.setAttribute("aria-label", t("order.panel"));
    clear(this.body);
    if (this.error) {
      this.body.append(
        h(
          "div",
          { class: "load-failed", testid: "load-failed", role: "alert" },
          h("p", { class: "op-error" }, this.error),
          h("p", { class: "load-failed-hint" }, t("wf.loadRetrying")),
          h(
            "button",
            {
              type: "button",
              class: "btn btn-small",
              testid: "load-retry",
              on: { click: () => (this.onRetry ? this.onRetry() : this.load()) },
            },
            icon("retry"),
            h("span", null, t("wf.loadRetry")),
          ),
        ),
      );
      return;
    }
    const o = this.order;
    if (!o) {
      this.body.append(h("p", { class: "op-loading" }, t("order.loading")));
      return;
    }
    this.body.append(
      ...[
        this.header(o),
        this.actionsView(o),
        this.progressView(o),
        this.itemsView(o),
        this.moneyView(o),
        this.shippingView(o),
        this.issuesView(o),
        this.confirmationsView(o),
        dossierView(o),
        legalHoldView(o, this.me, (changed) => this.applyOrder({ ...changed, id: o.id })),
      ].filter(Boolean),
    );
  }

  header(o) {
    const customerName = this.customer ? this.customer.name || this.customer.display_name : null;
    return h(
      "header",
      { class: "op-head" },
      h("div", { class: "op-number", testid: "order-number" }, o.number),
      h(
        "div",
        { class: "op-status-row" },
        h(
          "span",
          { class: "status-chip status-chip-lg", testid: "order-status", dataset: { status: o.status } },
          this.stateLabel(o.status),
        ),
        o.sample_round ? h("span", { class: "op-muted" }, t("order.sampleRound", { round: o.sample_round })) : null,
        legalHoldBadge(o),
      ),
      dl([
        [t("order.customer"), customerName],
        [t("order.workflow"), workflowOf(o) ? pickText(workflowOf(o).title, o.workflow) : o.workflow],
        [t("order.total"), fmtMoney(o.total_cents, o.currency)],
      ]),
    );
  }

  /**
   * What a step's button says: the workflow's own words for the step when it has them
   * (a new sample round, a step back for rework), otherwise what the step does to the
   * order, so a button never offers to mark the order as the state it is already in.
   * @returns {{button: string, title: string}}
   */
  stepWords(o, tr) {
    const label = pickText(tr.label, this.stateLabel(tr.to));
    const def = transitionOf(workflowOf(o), o.status, tr.to);
    const action = pickText(tr.action, "") || (def ? pickText(def.action, "") : "");
    if (action) {
      const round = String((o.sample_round || 0) + 1);
      const words = action.replaceAll("{round}", round).replaceAll("{number}", o.number || "");
      return { button: words, title: words };
    }
    if (tr.to === o.status) {
      const words = t("wf.repeatStep", { label });
      return { button: words, title: words };
    }
    const names = ((workflowOf(o) || {}).states || []).map((s) => s.name);
    const back = names.indexOf(tr.to) >= 0 && names.indexOf(tr.to) < names.indexOf(o.status);
    if (back && !leavesPath(workflowOf(o), o.status, tr.to)) {
      const words = t("wf.backTo", { label });
      return { button: words, title: words };
    }
    return { button: t("act.transition", { label }), title: t("act.transitionTitle", { label }) };
  }

  actionsView(o) {
    const { transitions, actions, issueKinds } = this.allowed();
    const buttons = [];
    for (const tr of transitions) {
      const words = this.stepWords(o, tr);
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: leavesPath(workflowOf(o), o.status, tr.to) ? "btn btn-danger-outline" : "btn btn-primary",
            testid: "action-transition",
            dataset: { to: tr.to },
            on: { click: () => this.doTransition(tr) },
          },
          tr.photos ? icon("image") : null,
          words.button,
        ),
      );
    }
    const add = (action, testid, label, fn, when = true) => {
      if (actions.includes(action) && when)
        buttons.push(h("button", { type: "button", class: "btn", testid, on: { click: fn } }, label));
    };
    add("report_issue", "action-issue", t("act.issue"), () => this.doIssue(), issueKinds.length > 0);
    add("record_payment", "action-payment", t("act.payment"), () => this.doMoney("payments"));
    add("record_refund", "action-refund", t("act.refund"), () => this.doMoney("refunds"), (o.paid_cents || 0) > 0);
    add(
      "approve_shipping",
      "action-ship-approval",
      t("act.shipApproval"),
      () => this.doShipApproval(),
      o.payment_status !== "paid" && !o.ship_approved,
    );
    add(
      "request_invoice",
      "action-invoice-request",
      t("act.invoiceRequest"),
      () => this.doInvoiceRequest(),
      o.invoice_status === "none",
    );
    add(
      "issue_invoice",
      "action-invoice-issue",
      t("act.invoiceIssue"),
      () => this.doInvoiceIssue(),
      o.invoice_status === "requested",
    );
    add("propose_version", "action-propose", t("act.propose"), () => this.doPropose(), this.confirmations.length > 0);
    add("manage_confirmations", "action-add-confirmation", t("act.addConfirmation"), () => this.doAddConfirmation());
    add("update_order", "action-update", t("act.update"), () => this.doUpdate());
    add("change_address", "action-address", t("act.address"), () => this.doAddress(null));
    add("invite_customer", "action-invite", t("act.invite"), () => this.doInvite());
    return section(
      t("order.actions"),
      "order-actions",
      buttons.length ? h("div", { class: "op-actions" }, buttons) : h("p", { class: "op-muted" }, t("order.noActions")),
    );
  }

  progressView(o) {
    return section(
      t("order.timeline"),
      "order-progress",
      orderProgress({ audience: "staff", order: o, events: this.history, members: this.members }),
    );
  }

  /**
   * A product's name in the reader's language: in English the catalogue's English name,
   * with the Chinese one the order was written with beside it, since the shop floor
   * knows the product by that one.
   */
  itemName(item) {
    return itemNameView(this.order, item, "oi-name", this.stock.get(item.sku));
  }

  itemsView(o) {
    const showStock = this.canViewStock();
    const rows = (o.items || []).map((item) => {
      let stock = null;
      if (showStock) {
        const s = this.stock.get(item.sku);
        if (s === undefined) stock = h("span", { class: "stock-level", testid: "stock-level" }, "…");
        else if (s === null)
          stock = h("span", { class: "stock-level unknown", testid: "stock-level" }, t("order.stockUnknown"));
        else {
          const low = s.available < item.quantity;
          stock = h(
            "span",
            {
              class: ["stock-level", s.available <= 0 ? "out" : low ? "low" : "ok"],
              testid: "stock-level",
              dataset: { available: s.available, onHand: s.on_hand },
              title: low ? t("order.stockShort", { needed: item.quantity, available: s.available }) : "",
            },
            t("order.stockLevel", { available: s.available, on_hand: s.on_hand }),
          );
        }
      }
      return h(
        "li",
        { class: "order-item", testid: "order-item", dataset: { sku: item.sku } },
        h(
          "div",
          { class: "oi-main" },
          this.itemName(item),
          h("span", { class: "oi-amount" }, fmtMoney(item.quantity * item.unit_price_cents, o.currency)),
        ),
        h(
          "div",
          { class: "oi-sub" },
          h("span", { class: "oi-sku" }, item.sku),
          h("span", t("order.qtyPrice", { qty: item.quantity, price: fmtMoney(item.unit_price_cents, o.currency) })),
        ),
        stock,
      );
    });
    return section(
      t("order.items"),
      "order-items-section",
      h("ul", { class: "order-items", testid: "order-items" }, rows),
    );
  }

  moneyView(o) {
    const pct = o.total_cents > 0 ? Math.min(100, Math.round(((o.paid_cents || 0) / o.total_cents) * 100)) : 0;
    const pay = h(
      "div",
      { class: "op-money", testid: "order-payment", dataset: { status: o.payment_status } },
      h(
        "div",
        { class: "op-money-head" },
        h("span", { class: "op-label" }, t("order.payment")),
        h("span", { class: `pay-chip pay-${o.payment_status}` }, t(`pay.${o.payment_status}`)),
      ),
      h(
        "div",
        {
          class: "meter",
          role: "progressbar",
          "aria-valuemin": "0",
          "aria-valuemax": "100",
          "aria-valuenow": String(pct),
        },
        h("span", { class: "meter-fill", style: { width: `${pct}%` } }),
      ),
      h(
        "div",
        { class: "op-muted" },
        t("order.paid", { paid: fmtMoney(o.paid_cents || 0, o.currency), total: fmtMoney(o.total_cents, o.currency) }),
      ),
      o.ship_approved ? h("div", { class: "op-note" }, icon("check"), t("order.shipApproved")) : null,
    );
    const inv = h(
      "div",
      { class: "op-money", testid: "order-invoice", dataset: { status: o.invoice_status } },
      h(
        "div",
        { class: "op-money-head" },
        h("span", { class: "op-label" }, t("order.invoice")),
        h("span", { class: `pay-chip inv-${o.invoice_status}` }, t(`inv.${o.invoice_status}`)),
      ),
    );
    return section(t("order.payment"), "order-money", pay, inv);
  }

  shippingView(o) {
    return section(
      t("order.shipping"),
      "order-shipping",
      dl([
        [t("order.address"), fmtAddress(o.address)],
        [t("order.carrier"), o.carrier],
        [t("order.tracking"), o.tracking_no],
        [t("order.eta"), o.eta_ts ? fmtDateTime(o.eta_ts) : null],
        [t("order.note"), o.note],
      ]),
    );
  }

  issuesView(o) {
    const issues = o.issues || [];
    if (issues.length === 0) return null;
    const roles = this.me.roles || [];
    const admin = isAdmin(this.me);
    const rows = issues
      .slice()
      .sort((a, b) => b.raised_ts - a.raised_ts)
      .map((issue) => {
        const d = issue.detail || {};
        const summary =
          d.description ||
          d.reason ||
          (d.address ? fmtAddress(d.address) : "") ||
          (d.sku ? `${d.sku} ${d.needed ?? ""}/${d.available ?? ""}` : "") ||
          d.note ||
          "";
        let settle = null;
        if (!issue.outcome) {
          if (issue.kind === "address_change_requested" && !d.shipped && this.can("change_address")) {
            settle = h(
              "button",
              {
                type: "button",
                class: "btn btn-small",
                testid: "action-settle",
                on: { click: () => this.doAddress(issue) },
              },
              t("act.address"),
            );
          } else if (issue.kind === "address_change_requested" && d.shipped && this.can("settle_interception")) {
            settle = h(
              "button",
              {
                type: "button",
                class: "btn btn-small",
                testid: "action-settle",
                on: { click: () => this.doSettle(issue, ["intercepted", "not_intercepted"]) },
              },
              t("act.settle"),
            );
          } else if (issue.kind === "defect_found" && this.can("choose_defect_remedy")) {
            settle = h(
              "button",
              {
                type: "button",
                class: "btn btn-small",
                testid: "action-settle",
                on: { click: () => this.doSettle(issue, ["exchange", "refund"]) },
              },
              t("act.remedy"),
            );
          } else if (
            issue.kind !== "address_change_requested" &&
            issue.kind !== "defect_found" &&
            (admin || (ISSUE_SETTLERS[issue.kind] || []).some((r) => roles.includes(r)))
          ) {
            settle = h(
              "button",
              {
                type: "button",
                class: "btn btn-small",
                testid: "action-settle",
                on: { click: () => this.doSettle(issue, null) },
              },
              t("act.settle"),
            );
          }
        }
        return h(
          "li",
          {
            class: issue.outcome ? "issue settled" : "issue open",
            testid: "order-issue",
            dataset: { kind: issue.kind, id: issue.id },
          },
          h(
            "div",
            { class: "issue-head" },
            icon("alert"),
            h("span", { class: "issue-kind" }, t(`issue.${issue.kind}`)),
            h(
              "span",
              { class: "op-muted" },
              issue.outcome
                ? t("order.issueSettled", { outcome: tOr(`outcome.${issue.outcome}`, issue.outcome) })
                : t("order.issueOpen"),
            ),
          ),
          summary ? h("div", { class: "issue-text" }, summary) : null,
          h(
            "div",
            { class: "op-muted" },
            `${fmtDateTime(issue.raised_ts)} · ${userName(this.members, issue.raised_by)}`,
          ),
          settle,
        );
      });
    return section(t("order.issues"), "order-issues", h("ul", { class: "issues" }, rows));
  }

  confirmationsView() {
    if (this.confirmations.length === 0) return null;
    const decide = this.can("decide_version") && isAdmin(this.me);
    const rows = this.confirmations.map((item) =>
      h(
        "li",
        { class: "confirmation", testid: "confirmation", dataset: { id: item.id, status: item.status } },
        h(
          "div",
          { class: "conf-head" },
          h("span", { class: "conf-title" }, item.title),
          h(
            "span",
            { class: "op-muted" },
            `${t(`ckind.${item.kind}`)} · ${item.required ? t("order.confRequired") : t("order.confOptional")}`,
          ),
          h("span", { class: `ver-chip ver-${item.status}` }, tOr(`conf.status.${item.status}`, item.status)),
        ),
        (item.versions || []).length === 0
          ? h("p", { class: "op-muted" }, t("order.noVersions"))
          : h(
              "ol",
              { class: "versions" },
              item.versions
                .slice()
                .reverse()
                .map((v) => {
                  const state = v.state === "pending" ? "proposed" : v.state;
                  return h(
                    "li",
                    {
                      class: `version ver-${state}`,
                      testid: "confirmation-version",
                      dataset: { state, number: v.number },
                    },
                    h(
                      "div",
                      { class: "ver-head" },
                      h("span", { class: "ver-n" }, t("order.version", { n: v.number })),
                      h("span", { class: `ver-chip ver-${state}` }, t(`ver.${state}`)),
                    ),
                    h("div", { class: "ver-text" }, v.text),
                    (v.attachments || []).length
                      ? h(
                          "div",
                          { class: "ver-files" },
                          v.attachments
                            .filter((a) => a && typeof a.id === "string")
                            .map((a) =>
                              h(
                                "a",
                                {
                                  href: `/api/media/${encodeURIComponent(a.id)}`,
                                  download: a.name || "",
                                  class: "ver-file",
                                },
                                icon("file"),
                                a.name || a.id,
                              ),
                            ),
                        )
                      : null,
                    h(
                      "div",
                      { class: "op-muted" },
                      `${fmtDateTime(v.proposed_ts)} · ${userName(this.members, v.proposed_by)}`,
                    ),
                    v.comment ? h("div", { class: "ver-comment" }, v.comment) : null,
                    decide && state === "proposed"
                      ? h(
                          "div",
                          { class: "ver-actions" },
                          h(
                            "button",
                            {
                              type: "button",
                              class: "btn btn-small btn-primary",
                              testid: "action-approve",
                              dataset: { item: item.id, version: v.number },
                              on: { click: () => this.doDecide(item, v, "approved") },
                            },
                            t("act.approve"),
                          ),
                          h(
                            "button",
                            {
                              type: "button",
                              class: "btn btn-small",
                              testid: "action-reject",
                              dataset: { item: item.id, version: v.number },
                              on: { click: () => this.doDecide(item, v, "rejected") },
                            },
                            t("act.reject"),
                          ),
                        )
                      : null,
                  );
                }),
            ),
      ),
    );
    return section(
      t("order.confirmations"),
      "order-confirmations",
      h("ul", { class: "confirmations", testid: "confirmations" }, rows),
    );
  }

  // ---- actions -------------------------------------------------------------------

  post(path, body, key, method = "POST") {
    return api(path, { method, body, idempotencyKey: key });
  }

  async uploadAll(files) {
    const ids = [];
    for (const file of files || []) ids.push(await uploadFile(file, this.order.conv));
    return ids;
  }

  /** Send uploaded files into the order's conversation as one message of `kind`. */
  sendFiles(kind, ids, text) {
    return this.realtime.send({
      op: "send",
      ref: newRef(),
      conv: this.order.conv,
      kind,
      text,
      attachments: ids.map((id) => ({ id })),
      mentions: [],
      reply_to: null,
    });
  }

  /**
   * The photos a dialog picked, uploaded once: a retry after a refused step sends the
   * same uploads again (the server attaches them only when the step goes through).
   */
  async uploadOnce(cache, files) {
    const list = files || [];
    const same = cache.files && cache.files.length === list.length && cache.files.every((f, i) => f === list[i]);
    if (!same) {
      cache.ids = await this.uploadAll(list);
      cache.files = list;
    }
    return cache.ids;
  }

  /** The photo picker of a step: needed or optional, and who will see the photos. */
  photoField(tr, def) {
    const required = Boolean(tr.photos_required || (def && def.photos_required));
    const audience = def && def.customer ? t("ph.customerSees") : t("ph.staffOnly");
    return {
      name: "photos",
      label: t("f.photos"),
      type: "file",
      accept: "image/*",
      multiple: true,
      required,
      hint: `${t(required ? "ph.required" : "ph.optional")} ${audience}`,
    };
  }

  /** After a change to the confirmations: show them fresh and say it is done. */
  async confirmationsChanged() {
    await this.loadConfirmations();
    this.render();
    toast(t("act.done"));
  }

  async afterChange(order) {
    if (order && order.id === this.orderId) this.order = { ...this.order, ...order };
    toast(t("act.done"));
    await this.refetch();
  }

  async doTransition(tr) {
    const o = this.order;
    const def = transitionOf(workflowOf(o), o.status, tr.to);
    const tracking = Boolean(def && (def.guards || []).includes("has_tracking"));
    const key = newRef();
    const fields = [];
    const uploaded = {};
    if (tr.photos) fields.push(this.photoField(tr, def));
    if (tracking) {
      fields.push({ name: "carrier", label: t("f.carrier"), value: o.carrier || "", required: true });
      fields.push({ name: "tracking_no", label: t("f.tracking_no"), value: o.tracking_no || "", required: true });
    }
    fields.push({ name: "note", label: t("f.note"), type: "textarea", rows: 2 });
    await formDialog({
      title: this.stepWords(o, tr).title,
      fields,
      danger: leavesPath(workflowOf(o), o.status, tr.to),
      onSubmit: async (v) => {
        const ids = tr.photos ? await this.uploadOnce(uploaded, v.photos) : [];
        const body = { to: tr.to };
        if (v.note) body.note = v.note;
        if (ids.length) body.photos = ids.map((id) => ({ id }));
        if (tracking) {
          body.carrier = v.carrier;
          body.tracking_no = v.tracking_no;
        }
        const order = await this.post(`/api/orders/${encodeURIComponent(o.id)}/status`, body, key);
        await this.afterChange(order);
      },
    });
  }

  async doIssue() {
    const o = this.order;
    const kinds = this.allowed().issueKinds;
    const key = newRef();
    const is =
      (...names) =>
      (v) =>
        names.includes(v.kind);
    const addr = o.address || {};
    const fields = [
      {
        name: "kind",
        label: t("f.kind"),
        type: "select",
        options: kinds.map((k) => ({ value: k, label: t(`issue.${k}`) })),
        value: kinds[0],
        required: true,
      },
      {
        name: "sku",
        label: t("f.sku"),
        type: "select",
        options: (o.items || []).map((i) => ({ value: i.sku, label: `${i.sku} ${i.name || ""}` })),
        showIf: is("out_of_stock"),
        required: true,
      },
      { name: "needed", label: t("f.needed"), type: "number", min: 0, showIf: is("out_of_stock") },
      { name: "available", label: t("f.available"), type: "number", min: 0, showIf: is("out_of_stock") },
      ...ADDRESS_FIELDS.map((f) => ({
        name: f,
        label: t(`f.addr.${f}`),
        value: addr[f] || "",
        showIf: is("address_change_requested"),
        required: f === "line1",
      })),
      {
        name: "reason",
        label: t("f.reason"),
        type: "textarea",
        rows: 2,
        showIf: is("delay_risk", "delay_notice"),
        required: true,
      },
      { name: "eta", label: t("f.eta"), type: "date", showIf: is("delay_risk", "delay_notice") },
      {
        name: "description",
        label: t("f.description"),
        type: "textarea",
        rows: 3,
        showIf: is("defect_found"),
        required: true,
      },
      {
        name: "photos",
        label: t("f.photos"),
        type: "file",
        accept: "image/*",
        multiple: true,
        showIf: is("defect_found"),
        hint: `${t("ph.optional")} ${t("ph.customerSees")}`,
      },
      {
        name: "note",
        label: t("f.note"),
        type: "textarea",
        rows: 2,
        showIf: is("out_of_stock", "address_change_requested"),
      },
    ];
    const uploaded = {};
    await formDialog({
      title: t("act.issue"),
      fields,
      onSubmit: async (v) => {
        const body = { kind: v.kind };
        if (v.kind === "out_of_stock") {
          body.sku = v.sku;
          if (v.needed !== null && v.needed !== undefined) body.needed = v.needed;
          if (v.available !== null && v.available !== undefined) body.available = v.available;
          if (v.note) body.note = v.note;
        } else if (v.kind === "address_change_requested") {
          body.address = {};
          for (const f of ADDRESS_FIELDS) if (v[f]) body.address[f] = v[f];
          if (v.note) body.note = v.note;
        } else if (v.kind === "delay_risk" || v.kind === "delay_notice") {
          body.reason = v.reason;
          if (v.eta) body.eta = v.eta;
        } else if (v.kind === "defect_found") {
          body.description = v.description;
        }
        if (v.kind === "defect_found" && v.photos && v.photos.length) {
          const ids = await this.uploadOnce(uploaded, v.photos);
          body.photos = ids.map((id) => ({ id }));
        }
        await this.post(`/api/orders/${encodeURIComponent(o.id)}/issues`, body, key);
        await this.afterChange(null);
      },
    });
  }

  async doMoney(kind) {
    const o = this.order;
    const key = newRef();
    const remaining = Math.max(0, o.total_cents - (o.paid_cents || 0));
    const suggested = kind === "payments" ? remaining : o.paid_cents || 0;
    await formDialog({
      title: kind === "payments" ? t("act.payment") : t("act.refund"),
      fields: [
        {
          name: "amount",
          label: t("f.amount", { currency: o.currency }),
          type: "text",
          inputmode: "decimal",
          value: suggested > 0 ? fromCents(suggested, o.currency) : "",
          required: true,
        },
        {
          name: "method",
          label: t("f.method"),
          type: "select",
          options: PAYMENT_METHODS.map((m) => ({ value: m, label: t(`method.${m}`) })),
          value: "bank_transfer",
          required: true,
        },
        { name: "reference", label: t("f.reference"), required: true },
      ],
      onSubmit: async (v) => {
        const cents = toCents(v.amount, o.currency);
        if (!cents) throw userError(t("f.invalidAmount"));
        const body = await this.post(
          `/api/orders/${encodeURIComponent(o.id)}/${kind}`,
          { amount_cents: cents, method: v.method, reference: v.reference },
          key,
        );
        await this.afterChange(body && body.order);
      },
    });
  }

  async doShipApproval() {
    const o = this.order;
    const key = newRef();
    await formDialog({
      title: t("act.shipApproval"),
      fields: [{ name: "note", label: t("f.note"), type: "textarea", rows: 2 }],
      onSubmit: async (v) => {
        const order = await this.post(
          `/api/orders/${encodeURIComponent(o.id)}/ship-approval`,
          { note: v.note || "" },
          key,
        );
        await this.afterChange(order);
      },
    });
  }

  async doInvoiceRequest() {
    const o = this.order;
    const key = newRef();
    await formDialog({
      title: t("act.invoiceRequest"),
      fields: [
        {
          name: "title",
          label: t("f.title"),
          required: true,
          value: this.customer ? this.customer.company || this.customer.name || "" : "",
        },
        { name: "tax_id", label: t("f.tax_id") },
      ],
      onSubmit: async (v) => {
        const body = { title: v.title };
        if (v.tax_id) body.tax_id = v.tax_id;
        await this.post(`/api/orders/${encodeURIComponent(o.id)}/invoice`, body, key);
        await this.afterChange(null);
      },
    });
  }

  async doInvoiceIssue() {
    const o = this.order;
    const key = newRef();
    await formDialog({
      title: t("act.invoiceIssue"),
      fields: [{ name: "number", label: t("f.invoice_number"), required: true }],
      onSubmit: async (v) => {
        await this.post(`/api/orders/${encodeURIComponent(o.id)}/invoice/issue`, { number: v.number }, key);
        await this.afterChange(null);
      },
    });
  }

  async doUpdate() {
    const o = this.order;
    const key = newRef();
    const eta = o.eta_ts ? new Date(o.eta_ts) : null;
    const etaValue = eta
      ? `${eta.getFullYear()}-${String(eta.getMonth() + 1).padStart(2, "0")}-${String(eta.getDate()).padStart(2, "0")}`
      : "";
    await formDialog({
      title: t("act.update"),
      fields: [
        { name: "carrier", label: t("f.carrier"), value: o.carrier || "" },
        { name: "tracking_no", label: t("f.tracking_no"), value: o.tracking_no || "" },
        { name: "eta", label: t("f.eta_date"), type: "date", value: etaValue },
        { name: "note", label: t("f.note"), type: "textarea", rows: 2, value: o.note || "" },
      ],
      onSubmit: async (v) => {
        const body = {};
        if (v.carrier !== (o.carrier || "")) body.carrier = v.carrier || null;
        if (v.tracking_no !== (o.tracking_no || "")) body.tracking_no = v.tracking_no || null;
        if (v.eta !== etaValue) body.eta_ts = v.eta ? new Date(`${v.eta}T12:00:00`).getTime() : null;
        if (v.note !== (o.note || "")) body.note = v.note;
        if (Object.keys(body).length === 0) return true;
        const order = await this.post(`/api/orders/${encodeURIComponent(o.id)}`, body, key, "PATCH");
        await this.afterChange(order);
        return true;
      },
    });
  }

  async doAddress(issue) {
    const o = this.order;
    const key = newRef();
    const addr = (issue && issue.detail && issue.detail.address) || o.address || {};
    await formDialog({
      title: t("act.address"),
      fields: ADDRESS_FIELDS.map((f) => ({
        name: f,
        label: t(`f.addr.${f}`),
        value: addr[f] || "",
        required: f === "line1",
      })),
      onSubmit: async (v) => {
        const address = {};
        for (const f of ADDRESS_FIELDS) if (v[f]) address[f] = v[f];
        const body = { address };
        if (issue) body.issue = issue.id;
        const order = await this.post(`/api/orders/${encodeURIComponent(o.id)}/address`, body, key);
        await this.afterChange(order);
      },
    });
  }

  async doSettle(issue, outcomes) {
    const o = this.order;
    const key = newRef();
    const fields = outcomes
      ? [
          {
            name: "outcome",
            label: t("f.outcome"),
            type: "select",
            options: outcomes.map((x) => ({ value: x, label: t(`outcome.${x}`) })),
            value: outcomes[0],
            required: true,
          },
        ]
      : [{ name: "outcome", label: t("f.outcome"), maxlength: 32, value: t("order.done"), required: true }];
    fields.push({ name: "note", label: t("f.note"), type: "textarea", rows: 2 });
    await formDialog({
      title: `${t("act.settle")} · ${t(`issue.${issue.kind}`)}`,
      fields,
      onSubmit: async (v) => {
        const body = { outcome: v.outcome };
        if (v.note) body.note = v.note;
        await this.post(
          `/api/orders/${encodeURIComponent(o.id)}/issues/${encodeURIComponent(issue.id)}/settle`,
          body,
          key,
        );
        await this.afterChange(null);
      },
    });
  }

  async doInvite() {
    const o = this.order;
    try {
      const inv = await this.post(`/api/orders/${encodeURIComponent(o.id)}/invitations`, undefined, newRef());
      const url = new URL(inv.url, window.location.origin).toString();
      const field = h("input", {
        type: "text",
        class: "invite-url",
        testid: "invite-url",
        readonly: true,
        value: url,
        "aria-label": t("act.inviteLink"),
      });
      const copy = h("button", { type: "button", class: "btn", testid: "invite-copy" }, t("act.copy"));
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(url);
        } catch {
          field.select();
          document.execCommand("copy");
        }
        copy.textContent = t("act.copied");
      });
      infoDialog(t("act.invite"), [h("p", t("act.inviteLink")), h("div", { class: "invite-row" }, field, copy)]);
      field.select();
    } catch (err) {
      toast(errorText(err), "error");
    }
  }

  async doAddConfirmation() {
    const o = this.order;
    const key = newRef();
    await formDialog({
      title: t("act.addConfirmation"),
      fields: [
        {
          name: "kind",
          label: t("f.kind"),
          type: "select",
          options: CONFIRMATION_KINDS.map((k) => ({ value: k, label: t(`ckind.${k}`) })),
          value: "material",
          required: true,
        },
        { name: "title", label: t("f.title"), required: true },
        { name: "required", label: t("f.required"), type: "checkbox", value: true },
      ],
      onSubmit: async (v) => {
        await this.post(
          `/api/orders/${encodeURIComponent(o.id)}/confirmations`,
          { kind: v.kind, title: v.title, required: Boolean(v.required) },
          key,
        );
        await this.confirmationsChanged();
      },
    });
  }

  async doPropose(preset) {
    const key = newRef();
    const open = this.confirmations.find((c) => c.status !== "approved") || this.confirmations[0];
    await formDialog({
      title: t("act.propose"),
      fields: [
        {
          name: "item",
          label: t("f.item"),
          type: "select",
          options: this.confirmations.map((c) => ({ value: c.id, label: c.title })),
          value: (preset && preset.id) || (open && open.id),
          required: true,
        },
        { name: "text", label: t("f.text"), type: "textarea", rows: 3, required: true },
        { name: "attachments", label: t("f.attachments"), type: "file", multiple: true },
      ],
      onSubmit: async (v) => {
        const body = { text: v.text };
        const files = v.attachments || [];
        if (files.length) {
          const ids = await this.uploadAll(files);
          body.attachments = ids.map((id, i) => ({
            id,
            name: files[i].name,
            type: files[i].type || "application/octet-stream",
            size: files[i].size,
          }));
          if (this.realtime) {
            const isImage = (i) => (files[i].type || "").startsWith("image/");
            const images = ids.filter((id, i) => isImage(i));
            const others = ids.filter((id, i) => !isImage(i));
            for (const [kind, group] of [
              ["image", images],
              ["file", others],
            ]) {
              if (group.length) this.sendFiles(kind, group, v.text.slice(0, 200)).catch(() => {});
            }
          }
        }
        await this.post(`/api/confirmations/${encodeURIComponent(v.item)}/versions`, body, key);
        await this.confirmationsChanged();
      },
    });
  }

  async doDecide(item, version, decision) {
    const key = newRef();
    await formDialog({
      title: `${decision === "approved" ? t("act.approve") : t("act.reject")} · ${item.title} · ${t("order.version", { n: version.number })}`,
      intro: h("p", { class: "ver-text" }, version.text),
      fields: [
        { name: "comment", label: t("f.comment"), type: "textarea", rows: 2, required: decision === "rejected" },
      ],
      danger: decision === "rejected",
      onSubmit: async (v) => {
        await this.post(
          `/api/confirmations/${encodeURIComponent(item.id)}/versions/${version.number}/decision`,
          { decision, comment: v.comment || "" },
          key,
        );
        await this.confirmationsChanged();
      },
    });
  }
}
