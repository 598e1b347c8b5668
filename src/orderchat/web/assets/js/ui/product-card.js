/**
 * A product shared in a conversation (a message of kind `product`, docs/consults.md §4):
 * its picture, its name in the reader's language, its price, its options and its stock.
 * The stock shared with the message is what it was then; the card asks
 * `GET /api/products/{sku}` for the stock as it is now and shows that once it arrives.
 *
 * Used by the timeline for every message of kind `product`, on the visitor's page and
 * in the staff workspace alike.
 */

import { h, clear } from "../dom.js";
import { getLang, pickText, t } from "../i18n.js";
import { api } from "../api.js";
import { fmtMoney } from "../format.js";
import "./strings-chat.js";

// Live figures are kept this long: a redraw (a language switch) does not ask again.
const LIVE_MS = 20000;
const live = new Map();

/**
 * The card's facts from a server product (`meta.product`, or `GET /api/products/{sku}`),
 * whatever spelling of a field the server used.
 * @param {object} p
 * @returns {{sku: string, name: object|string, priceCents: number|null, currency: string,
 *            available: number|null, options: {name: string, values: string[]}[], picture: string|null}}
 */
export function productFacts(p) {
  const product = p && typeof p === "object" ? p : {};
  const sku = String(product.sku || "");
  let name = product.name;
  if (!name || typeof name !== "object") {
    name = {
      "zh-CN": product.name_zh || (typeof product.name === "string" ? product.name : "") || "",
      en: product.name_en || "",
    };
  }
  const priceCents = firstNumber(product.price_cents, product.unit_price_cents, product.price && product.price.cents);
  const currency = String(product.currency || (product.price && product.price.currency) || "CNY");
  const stock = product.stock;
  const available = firstNumber(
    product.available,
    stock && typeof stock === "object" ? stock.available : stock,
    product.stock_available,
  );
  const picture =
    product.picture_url ||
    product.picture ||
    product.image_url ||
    (product.has_picture && sku ? `/api/products/${encodeURIComponent(sku)}/picture` : null);
  return { sku, name, priceCents, currency, available, options: optionList(product.options), picture };
}

function firstNumber(...values) {
  for (const v of values) if (typeof v === "number" && Number.isFinite(v)) return v;
  return null;
}

/** Options as `[{name, values}]` from a list of strings, a list of objects or a map. */
function optionList(raw) {
  if (!raw) return [];
  const text = (v) => (v && typeof v === "object" ? pickText(v, "") : String(v ?? ""));
  const values = (v) =>
    Array.isArray(v) ? v.map(text).filter(Boolean) : v === undefined || v === null ? [] : [text(v)];
  if (Array.isArray(raw)) {
    return raw
      .map((o) =>
        o && typeof o === "object" && !("zh-CN" in o || "en" in o)
          ? { name: text(o.name || o.label || ""), values: values(o.values ?? o.value ?? o.choices) }
          : { name: "", values: [text(o)] },
      )
      .filter((o) => o.name || o.values.length);
  }
  if (typeof raw === "object") return Object.entries(raw).map(([name, v]) => ({ name, values: values(v) }));
  return [];
}

/**
 * The product's name for the reader: their language's, else the other one.
 * @param {object|string} name
 * @param {string} sku
 * @returns {string}
 */
export function productName(name, sku) {
  if (typeof name === "string") return name || sku;
  const mine = name[getLang()];
  return (mine && mine.trim()) || pickText(name, "") || sku;
}

function stockText(available, isLive) {
  if (available === null) return t("pc.stockUnknown");
  if (available <= 0) return t(isLive ? "pc.outOfStock" : "pc.outOfStockShared");
  return t(isLive ? "pc.inStock" : "pc.inStockShared", { count: available });
}

/**
 * The stock as it is now, at most one request per SKU in a while.
 * @param {string} sku
 * @returns {Promise<number|null>}
 */
export function liveStock(sku) {
  const kept = live.get(sku);
  if (kept && Date.now() - kept.at < LIVE_MS) return kept.promise;
  const promise = api(`/api/products/${encodeURIComponent(sku)}`)
    .then((found) => productFacts(found).available)
    .catch((err) => {
      live.delete(sku);
      console.warn("the live stock is unavailable", sku, err);
      return null;
    });
  live.set(sku, { at: Date.now(), promise });
  return promise;
}

/**
 * The card of one product.
 * @param {object} product `meta.product`
 * @param {{live?: boolean}} [options] `live: false` shows the shared stock only
 * @returns {HTMLElement}
 */
export function productCard(product, { live: askLive = true } = {}) {
  const facts = productFacts(product);
  const name = productName(facts.name, facts.sku);
  const stock = h(
    "span",
    {
      class: ["pc-stock", facts.available !== null && facts.available <= 0 ? "pc-stock-out" : null],
      testid: "product-stock",
      dataset: { stock: facts.available, live: "false" },
    },
    stockText(facts.available, false),
  );
  const card = h(
    "div",
    { class: "product-card", testid: "product-card", dataset: { sku: facts.sku } },
    facts.picture
      ? h(
          "div",
          { class: "pc-picture" },
          h("img", { src: facts.picture, alt: name, loading: "lazy", testid: "product-picture" }),
        )
      : null,
    h(
      "div",
      { class: "pc-body" },
      h("div", { class: "pc-name", testid: "product-name", dir: "auto" }, name),
      h("div", { class: "pc-sku" }, facts.sku),
      h(
        "div",
        { class: "pc-facts" },
        facts.priceCents !== null
          ? h("strong", { class: "pc-price", testid: "product-price" }, fmtMoney(facts.priceCents, facts.currency))
          : null,
        stock,
      ),
      facts.options.length
        ? h(
            "ul",
            { class: "pc-options", testid: "product-options", "aria-label": t("pc.options") },
            facts.options.map((o) =>
              h(
                "li",
                { class: "pc-option", testid: "product-option" },
                o.name ? h("span", { class: "pc-option-name" }, `${o.name}: `) : null,
                o.values.join(t("pc.optionSep")),
              ),
            ),
          )
        : null,
    ),
  );
  if (askLive && facts.sku) {
    liveStock(facts.sku).then((available) => {
      if (available === null) return;
      stock.dataset.stock = String(available);
      stock.dataset.live = "true";
      stock.classList.toggle("pc-stock-out", available <= 0);
      clear(stock).append(stockText(available, true));
    });
  }
  return card;
}
