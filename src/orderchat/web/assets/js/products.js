/**
 * A product's names as an order's page shows them. The order keeps the name it was
 * written with (Chinese in this shop); the order's `item_names` (from
 * `GET /api/orders/{id}`) carries the catalogue's names in each language, so the
 * English page can say the product in English with the Chinese name beside it.
 */

import { h } from "./dom.js";
import { getLang } from "./i18n.js";

/**
 * The English name of an order's item, or "" when there is none or it says nothing new.
 * @param {object} order with `item_names` when loaded over HTTP
 * @param {{sku: string, name?: string}} item
 * @param {object|null} [sku] a catalogue record (`name_en`), when the page has one
 * @returns {string}
 */
export function englishName(order, item, sku) {
  const names = order && order.item_names && order.item_names[item.sku];
  const en = (names && typeof names.en === "string" && names.en.trim()) || (sku && sku.name_en) || "";
  return en && en !== item.name ? en : "";
}

/**
 * The item's name for the reader: in English the English name with the order's own
 * name beside it, otherwise the order's name.
 * @returns {HTMLElement}
 */
export function itemNameView(order, item, cls, sku) {
  const own = item.name || item.sku;
  const en = getLang() === "en" ? englishName(order, item, sku) : "";
  if (!en) return h("span", { class: cls, testid: "item-name" }, own);
  return h(
    "span",
    { class: cls, testid: "item-name" },
    h("span", { lang: "en" }, en),
    " ",
    h("span", { class: "item-name-other", lang: "zh-CN", testid: "item-name-zh" }, own),
  );
}
