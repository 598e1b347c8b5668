/**
 * Turning a consult into an order (docs/consults.md §5): the body of `POST /api/orders`
 * without the customer, posted to `POST /api/consults/{id}/order`. The visitor becomes
 * the order's customer; their session sees the order at once.
 *
 * The form is the app's dialog form (ui/dialogs.js) with a line editor for the items:
 * a product is picked with the catalogue's search (ui/share-product.js), its name and
 * price come from the catalogue and can be changed.
 */

import { h } from "../dom.js";
import { pickText, t } from "../i18n.js";
import { api } from "../api.js";
import { formDialog } from "./dialogs.js";
import { skuName, skuSearch } from "./share-product.js";
import "./strings-consults.js";

const CURRENCIES = ["CNY", "USD", "EUR", "HKD", "GBP", "JPY"];
const ADDRESS_FIELDS = ["name", "phone", "country", "region", "city", "district", "line1", "postcode"];
const NUMBER = /^[A-Za-z0-9_./#-]{1,64}$/;

function userError(text) {
  const err = new Error(text);
  err.userMessage = text;
  return err;
}

/** A number for the order the person may keep or change: the shop's prefix, the day and a few digits. */
function suggestNumber() {
  const d = new Date();
  const day = `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}`;
  const tail = String(Math.floor(Math.random() * 10000)).padStart(4, "0");
  return `CS-${day}-${tail}`;
}

/** Money typed by a person ("1,299.00", "¥88") in whole cents, or null. */
function toCents(text) {
  const clean = String(text || "").replace(/[,\s¥$€£]/g, "");
  if (!/^\d+(\.\d{1,2})?$/.test(clean)) return null;
  return Math.round(Number(clean) * 100);
}

function fromCents(cents) {
  return typeof cents === "number" ? (cents / 100).toFixed(2) : "";
}

/** The item lines of the form: a SKU search adds a line, each line can be edited or removed. */
class ItemLines {
  constructor(first) {
    this.lines = [];
    this.list = h("div", { class: "cs-lines", testid: "order-items" });
    this.search = skuSearch({
      testid: "order-sku",
      browse: false,
      limit: 8,
      pickLabel: t("cs.order.addItem"),
      onPick: (sku) => this.add(sku),
    });
    this.el = h(
      "div",
      { class: "cs-items" },
      h("p", { class: "cs-items-title" }, t("cs.order.items")),
      this.list,
      this.search.el,
    );
    if (first) this.add(first);
  }

  add(sku) {
    const existing = this.lines.find((l) => l.sku === sku.sku);
    if (existing) {
      existing.quantity.value = String(Number(existing.quantity.value || "0") + 1);
      return;
    }
    const line = {
      sku: sku.sku,
      name: h("input", {
        class: "cs-line-name",
        testid: "order-item-name",
        value: skuName(sku),
        maxlength: "200",
        "aria-label": t("cs.order.itemName"),
      }),
      quantity: h("input", {
        type: "number",
        class: "cs-line-qty",
        testid: "order-item-quantity",
        min: "1",
        step: "1",
        value: "1",
        inputmode: "numeric",
        "aria-label": t("cs.order.quantity"),
      }),
      price: h("input", {
        class: "cs-line-price",
        testid: "order-item-price",
        value: fromCents(sku.unit_price_cents),
        inputmode: "decimal",
        "aria-label": t("cs.order.price"),
      }),
    };
    line.row = h(
      "div",
      { class: "cs-oline", testid: "order-item", dataset: { sku: sku.sku } },
      h("code", { class: "cs-line-sku" }, sku.sku),
      line.name,
      h("label", { class: "cs-line-field" }, h("span", t("cs.order.quantity")), line.quantity),
      h("label", { class: "cs-line-field" }, h("span", t("cs.order.price")), line.price),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small btn-quiet",
          testid: "order-item-remove",
          on: { click: () => this.remove(line) },
        },
        t("cs.order.removeItem"),
      ),
    );
    this.lines.push(line);
    this.list.append(line.row);
  }

  remove(line) {
    this.lines = this.lines.filter((l) => l !== line);
    line.row.remove();
  }

  /** The items as the API takes them; throws a message for the dialog when one is wrong. */
  values() {
    if (!this.lines.length) throw userError(t("cs.order.noItems"));
    return this.lines.map((line, index) => {
      const quantity = Number(line.quantity.value);
      const cents = toCents(line.price.value);
      const name = line.name.value.trim();
      if (!Number.isInteger(quantity) || quantity < 1 || cents === null)
        throw userError(t("cs.order.badItem", { n: index + 1 }));
      const item = { sku: line.sku, quantity, unit_price_cents: cents };
      if (name) item.name = name;
      return item;
    });
  }
}

/**
 * Ask for the order and create it from the consult.
 * @param {object} consult the consult as the API shows it to staff
 * @returns {Promise<object|null>} the order created, or null when the person cancelled
 */
export async function createOrderDialog(consult) {
  let workflows = [];
  try {
    const found = await api("/api/workflows");
    workflows = (found && found.workflows) || [];
  } catch (err) {
    console.warn("workflows not loaded", err);
  }
  let first = null;
  if (consult.sku) {
    // Searched rather than read by code: a page may name a product the catalogue lacks.
    try {
      const found = await api(`/api/skus?${new URLSearchParams({ q: consult.sku, limit: "10" })}`);
      first = ((found && found.skus) || []).find((k) => k.sku === consult.sku) || null;
    } catch (err) {
      console.warn("the catalogue could not be searched", err);
    }
  }
  const items = new ItemLines(first);
  const visitor = consult.visitor || {};
  const wfOptions = workflows.map((w) => ({ value: w.name, label: pickText(w.title, w.name) }));
  const fields = [
    {
      name: "number",
      label: t("cs.order.number"),
      required: true,
      value: suggestNumber(),
      hint: t("cs.order.numberHint"),
    },
    wfOptions.length
      ? {
          name: "workflow",
          label: t("cs.order.workflow"),
          type: "select",
          options: wfOptions,
          value: wfOptions.some((o) => o.value === "retail") ? "retail" : wfOptions[0].value,
        }
      : null,
    {
      name: "currency",
      label: t("cs.order.currency"),
      type: "select",
      options: CURRENCIES.map((c) => ({ value: c, label: c })),
      value: "CNY",
    },
    { type: "info", content: items.el },
    { type: "info", content: h("p", { class: "cs-items-title" }, t("cs.order.address")) },
    ...ADDRESS_FIELDS.map((f) => ({
      name: `addr_${f}`,
      label: t(`cs.order.addr.${f}`),
      value: f === "name" ? visitor.display_name || "" : f === "phone" ? visitor.phone || "" : "",
    })),
    { name: "note", label: t("cs.order.note"), type: "textarea" },
  ].filter(Boolean);
  return formDialog({
    title: t("cs.order.title"),
    intro: h("p", t("cs.order.intro")),
    fields,
    submitLabel: t("cs.order.submit"),
    onSubmit: async (v) => {
      const number = String(v.number || "").trim();
      if (!NUMBER.test(number)) throw userError(t("cs.order.numberHint"));
      const body = { number, items: items.values(), currency: v.currency || "CNY" };
      if (v.workflow) body.workflow = v.workflow;
      const address = {};
      for (const f of ADDRESS_FIELDS) {
        const value = String(v[`addr_${f}`] || "").trim();
        if (value) address[f] = value;
      }
      if (Object.keys(address).length) body.address = address;
      if (v.note && v.note.trim()) body.note = v.note.trim();
      return api(`/api/consults/${encodeURIComponent(consult.id)}/order`, { method: "POST", body });
    },
  });
}
