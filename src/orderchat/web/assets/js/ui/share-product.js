/**
 * Sharing a product in a conversation (docs/consults.md §4): staff pick a SKU from the
 * catalogue (`GET /api/skus?q=`, the catalogue page's search) and the server posts a
 * message of kind `product` with its card (`POST /api/conversations/{id}/products`).
 * Also the SKU search the consult's order form uses.
 */

import { h, clear } from "../dom.js";
import { getLang, t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtMoney } from "../format.js";
import { icon } from "./icons.js";
import { infoDialog } from "./dialogs.js";
import { toast } from "./util.js";
import "./strings-consults.js";

const SEARCH_DELAY_MS = 250;
const LIMIT = 20;

/**
 * A SKU's name in the reader's language (the other as a fallback).
 * @param {{name_zh?: string, name_en?: string, sku: string}} sku
 * @returns {string}
 */
export function skuName(sku) {
  const en = sku.name_en && sku.name_en.trim();
  const zh = sku.name_zh && sku.name_zh.trim();
  return (getLang() === "en" ? en || zh : zh || en) || sku.sku;
}

/**
 * Search the catalogue as the person types; `onPick(sku)` for the one chosen.
 * @param {{onPick: (sku: object) => void, pickLabel?: string, testid?: string,
 *          browse?: boolean, limit?: number}} options
 *   `browse: false` lists nothing until something is typed (a form with more below).
 * @returns {{el: HTMLElement, input: HTMLInputElement}}
 */
export function skuSearch({ onPick, pickLabel, testid = "sku-search", browse = true, limit = LIMIT }) {
  const input = h("input", {
    type: "search",
    class: "cs-sku-input",
    testid: `${testid}-input`,
    placeholder: t("cs.share.search"),
    "aria-label": t("cs.share.search"),
    autocomplete: "off",
    enterkeyhint: "search",
  });
  const results = h("ul", { class: "cs-sku-results", testid: `${testid}-results`, role: "list" });
  const status = h("p", { class: "cs-sku-status", role: "status" });
  let timer = 0;
  let asked = 0;
  const search = async () => {
    const seq = ++asked;
    if (!browse && !input.value.trim()) {
      clear(results);
      status.textContent = "";
      return;
    }
    const params = new URLSearchParams({ q: input.value.trim(), limit: String(limit) });
    let page;
    try {
      page = await api(`/api/skus?${params}`);
    } catch (err) {
      if (seq !== asked) return;
      clear(results);
      status.textContent = t("cs.share.failedSearch", { message: errorText(err) });
      return;
    }
    if (seq !== asked) return;
    const skus = (page && page.skus) || [];
    status.textContent = skus.length ? "" : t("cs.share.none");
    clear(results).append(
      ...skus.map((sku) =>
        h(
          "li",
          { class: "cs-sku-row", testid: `${testid}-row`, dataset: { sku: sku.sku } },
          h(
            "span",
            { class: "cs-sku-text" },
            h("code", { class: "cs-sku-code" }, sku.sku),
            h("span", { class: "cs-sku-name" }, skuName(sku)),
            h(
              "span",
              { class: "cs-sku-meta" },
              typeof sku.unit_price_cents === "number" ? fmtMoney(sku.unit_price_cents) : null,
              typeof sku.available === "number"
                ? h(
                    "span",
                    { class: sku.available > 0 ? "cs-sku-stock" : "cs-sku-stock is-out" },
                    sku.available > 0 ? t("cs.share.available", { n: sku.available }) : t("cs.card.out"),
                  )
                : null,
            ),
          ),
          h(
            "button",
            {
              type: "button",
              class: "btn btn-small btn-primary",
              testid: `${testid}-pick`,
              on: { click: () => onPick(sku) },
            },
            pickLabel || t("cs.share.pick"),
          ),
        ),
      ),
    );
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, SEARCH_DELAY_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(timer);
      search();
    }
  });
  search();
  return { el: h("div", { class: "cs-sku-search", testid }, input, status, results), input };
}

/**
 * The composer's button that shares a product in conversation `convId`.
 * @param {() => string|null} convId the open conversation's id when clicked
 * @returns {HTMLButtonElement}
 */
export function shareProductButton(convId) {
  const button = h(
    "button",
    {
      type: "button",
      class: "icon-btn",
      testid: "composer-product",
      title: t("cs.share"),
      "aria-label": t("cs.share"),
      on: { click: () => shareProduct(convId()) },
    },
    icon("order"),
  );
  return button;
}

/**
 * Pick a product and post its card in the conversation.
 * @param {string|null} conv
 */
export function shareProduct(conv) {
  if (!conv) return;
  let dialog = null;
  let busy = false;
  const picker = skuSearch({
    testid: "share-product",
    onPick: async (sku) => {
      if (busy) return;
      busy = true;
      try {
        await api(`/api/conversations/${encodeURIComponent(conv)}/products`, {
          method: "POST",
          body: { sku: sku.sku },
        });
        toast(t("cs.share.done", { sku: sku.sku }));
        if (dialog && dialog.open) dialog.close();
      } catch (err) {
        toast(t("cs.share.failed", { message: errorText(err) }), "error");
      } finally {
        busy = false;
      }
    },
  });
  dialog = infoDialog(t("cs.share.title"), picker.el);
  dialog.classList.add("cs-share-dialog");
  picker.input.focus();
}
