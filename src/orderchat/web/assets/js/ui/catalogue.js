/**
 * The catalogue view (#/catalogue): SKUs with their stock, a page at a time, search,
 * add and edit, CSV export, and CSV import in two steps (docs/catalogue.md): the
 * server previews the file row by row and writes nothing; the Import button sends the
 * same file with the preview's token, and is enabled only when no row has an error.
 *
 * Who may edit is decided by the server (`manage_catalogue`); the view only hides
 * the buttons from roles that would be refused.
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { ApiError, api, errorText } from "../api.js";
import { fmtMoney } from "../format.js";
import { formDialog } from "./dialogs.js";
import { icon } from "./icons.js";
import { onLang, toast } from "./util.js";
import "./strings-catalogue.js";

const PAGE_SIZE = 50;
// A preview of a 50,000-row file is shown in part: the rows that matter come first.
const PREVIEW_ROWS_SHOWN = 500;
const SEARCH_DELAY_MS = 250;
// The roles `manage_catalogue` and `move_stock` allow (core/permissions.py).
const EDITORS = ["admin", "purchasing", "warehouse"];

/**
 * The links the account menu offers to the catalogue and rules views.
 * @returns {HTMLElement[]}
 */
export function pageLinks() {
  return [
    h("a", { class: "menu-link", href: "#/catalogue", testid: "menu-catalogue" }, t("menu.catalogue")),
    h("a", { class: "menu-link", href: "#/rules", testid: "menu-rules" }, t("menu.rules")),
  ];
}

/**
 * A page header with the way back to the conversations (the only way on a phone).
 * @param {string} title
 * @param {...HTMLElement} actions
 * @returns {HTMLElement}
 */
export function pageHeader(title, ...actions) {
  return h(
    "header",
    { class: "page-head" },
    h(
      "a",
      {
        class: "icon-btn page-back",
        href: "#/",
        testid: "page-back",
        title: t("page.back"),
        "aria-label": t("page.back"),
      },
      icon("back"),
    ),
    h("h2", { class: "page-title", testid: "page-title" }, title),
    h("div", { class: "page-actions" }, ...actions),
  );
}

function canEdit(me) {
  return Boolean(me && (me.roles || []).some((r) => EDITORS.includes(r)));
}

function skuName(sku) {
  return { zh: sku.name_zh, en: sku.name_en };
}

function isLow(sku) {
  return sku.low_stock_threshold > 0 && sku.available < sku.low_stock_threshold;
}

/** Yuan as typed ("599", "12.5") to whole fen, or null when it is not a price. */
function parseYuan(text) {
  const m = String(text || "")
    .trim()
    .match(/^(\d{1,9})(?:\.(\d{1,2}))?$/);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
}

export class CatalogueView {
  /** @param {{me: object}} opts */
  constructor({ me }) {
    this.me = me;
    this.editor = canEdit(me);
    this.query = "";
    this.offset = 0;
    this.total = 0;
    this.loadSeq = 0;
    this.searchTimer = null;
    this.el = h("section", { class: "page catalogue", testid: "catalogue" });
    this.offLang = onLang(() => this.render());
    this.render();
  }

  destroy() {
    this.offLang();
    clearTimeout(this.searchTimer);
    this.loadSeq += 1;
  }

  render() {
    const actions = [];
    if (this.editor) {
      actions.push(
        h(
          "button",
          { type: "button", class: "btn btn-small", testid: "catalogue-new", on: { click: () => this.edit(null) } },
          t("cat.new"),
        ),
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small",
            testid: "catalogue-import",
            on: { click: () => this.openImport() },
          },
          t("cat.import"),
        ),
      );
    }
    actions.push(
      h(
        "button",
        { type: "button", class: "btn btn-small", testid: "catalogue-export", on: { click: () => this.exportCsv() } },
        t("cat.export"),
      ),
    );
    this.search = h("input", {
      type: "search",
      class: "cat-search",
      testid: "catalogue-search",
      placeholder: t("cat.search"),
      "aria-label": t("cat.search"),
      value: this.query,
      on: { input: () => this.onSearch() },
    });
    this.countEl = h("span", { class: "cat-count", testid: "catalogue-count", role: "status" });
    this.importBox = h("div", { class: "cat-import", testid: "import-panel", hidden: true });
    this.body = h("div", { class: "cat-body" });
    this.pager = h("nav", { class: "cat-pager", "aria-label": t("cat.page", { page: "", pages: "" }) });
    clear(this.el).append(
      ...[
        pageHeader(t("cat.title"), ...actions),
        this.editor ? null : h("p", { class: "page-note" }, t("cat.readOnly")),
        h("div", { class: "cat-toolbar" }, this.search, this.countEl),
        this.importBox,
        this.body,
        this.pager,
      ].filter(Boolean),
    );
    if (this.importState) this.renderImport();
    this.load();
  }

  onSearch() {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      this.query = this.search.value.trim();
      this.offset = 0;
      this.load();
    }, SEARCH_DELAY_MS);
  }

  async load() {
    const seq = ++this.loadSeq;
    const params = new URLSearchParams({ q: this.query, limit: String(PAGE_SIZE), offset: String(this.offset) });
    let page;
    try {
      page = await api(`/api/skus?${params}`);
    } catch (err) {
      if (seq !== this.loadSeq) return;
      clear(this.body).append(
        h("p", { class: "op-error", role: "alert" }, t("cat.loadFailed", { message: errorText(err) })),
      );
      return;
    }
    if (seq !== this.loadSeq) return;
    this.total = page.total;
    this.countEl.textContent = t("cat.count", { count: page.total });
    this.renderTable(page.skus);
    this.renderPager();
  }

  renderTable(skus) {
    if (!skus.length) {
      clear(this.body).append(h("p", { class: "page-empty", testid: "catalogue-empty" }, t("cat.none")));
      return;
    }
    const head = h(
      "tr",
      h("th", { scope: "col" }, t("cat.col.sku")),
      h("th", { scope: "col" }, t("cat.col.name")),
      h("th", { scope: "col", class: "cat-opt" }, t("cat.col.category")),
      h("th", { scope: "col", class: "num cat-opt" }, t("cat.col.price")),
      h("th", { scope: "col", class: "num" }, t("cat.col.onHand")),
      h("th", { scope: "col", class: "num" }, t("cat.col.reserved")),
      h("th", { scope: "col", class: "num" }, t("cat.col.available")),
      this.editor ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("cat.edit"))) : null,
    );
    const rows = skus.map((sku) => this.row(sku));
    clear(this.body).append(
      h(
        "div",
        { class: "table-wrap" },
        h("table", { class: "cat-table", testid: "catalogue-table" }, h("thead", head), h("tbody", rows)),
      ),
    );
  }

  row(sku) {
    const names = skuName(sku);
    const low = isLow(sku);
    return h(
      "tr",
      { testid: "sku-row", dataset: { sku: sku.sku, low: low ? "true" : null }, class: low ? "is-low" : null },
      h("td", { class: "cat-code" }, h("code", sku.sku)),
      h(
        "td",
        { class: "cat-name" },
        names.zh ? h("span", { class: "cat-name-zh", lang: "zh-CN" }, names.zh) : null,
        names.en ? h("span", { class: "cat-name-en", lang: "en" }, names.en) : null,
        sku.active ? null : h("span", { class: "cat-badge cat-badge-muted" }, t("cat.inactive")),
      ),
      h("td", { class: "cat-opt" }, sku.category),
      h("td", { class: "num cat-opt" }, fmtMoney(sku.unit_price_cents)),
      h("td", { class: "num", testid: "sku-on-hand" }, String(sku.on_hand)),
      h("td", { class: "num", testid: "sku-reserved" }, String(sku.reserved)),
      h(
        "td",
        { class: "num" },
        String(sku.available),
        low
          ? h(
              "span",
              {
                class: "cat-badge cat-badge-warn",
                testid: "low-stock",
                title: t("cat.lowTitle", { available: sku.available, threshold: sku.low_stock_threshold }),
              },
              t("cat.low"),
            )
          : null,
      ),
      this.editor
        ? h(
            "td",
            h(
              "button",
              {
                type: "button",
                class: "btn btn-small btn-quiet",
                testid: "sku-edit",
                on: { click: () => this.edit(sku) },
              },
              t("cat.edit"),
            ),
          )
        : null,
    );
  }

  renderPager() {
    const pages = Math.max(1, Math.ceil(this.total / PAGE_SIZE));
    const page = Math.floor(this.offset / PAGE_SIZE) + 1;
    const go = (delta) => {
      this.offset = Math.max(0, this.offset + delta * PAGE_SIZE);
      this.load();
      this.el.scrollTop = 0;
    };
    clear(this.pager).append(
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          testid: "page-prev",
          disabled: page <= 1,
          on: { click: () => go(-1) },
        },
        t("cat.prev"),
      ),
      h("span", { class: "cat-page", testid: "page-number" }, t("cat.page", { page, pages })),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          testid: "page-next",
          disabled: page >= pages,
          on: { click: () => go(1) },
        },
        t("cat.next"),
      ),
    );
    this.pager.hidden = pages <= 1;
  }

  // ---- add and edit ------------------------------------------------------------------

  async edit(sku) {
    const creating = !sku;
    const fields = [];
    if (creating)
      fields.push({ name: "sku", label: t("cat.form.sku"), type: "text", required: true, hint: t("cat.form.skuHint") });
    fields.push(
      {
        name: "name_zh",
        label: t("cat.form.nameZh"),
        type: "text",
        value: sku ? sku.name_zh : "",
        hint: t("cat.form.nameHint"),
      },
      { name: "name_en", label: t("cat.form.nameEn"), type: "text", value: sku ? sku.name_en : "" },
      { name: "category", label: t("cat.form.category"), type: "text", value: sku ? sku.category : "" },
      {
        name: "price",
        label: t("cat.form.price"),
        type: "text",
        required: true,
        value: sku ? (sku.unit_price_cents / 100).toFixed(2) : "",
      },
      {
        name: "low_stock_threshold",
        label: t("cat.form.threshold"),
        type: "number",
        value: sku ? String(sku.low_stock_threshold) : "0",
      },
    );
    if (!creating) fields.push({ name: "active", label: t("cat.form.active"), type: "checkbox", value: sku.active });
    await formDialog({
      title: creating ? t("cat.form.newTitle") : t("cat.form.editTitle", { sku: sku.sku }),
      fields,
      onSubmit: async (v) => {
        const price = parseYuan(v.price);
        if (price === null) throw Object.assign(new Error("price"), { userMessage: t("cat.form.priceBad") });
        const nameZh = (v.name_zh || "").trim();
        const nameEn = (v.name_en || "").trim();
        if (!nameZh && !nameEn) throw Object.assign(new Error("name"), { userMessage: t("cat.form.needName") });
        const body = {
          name_zh: nameZh,
          name_en: nameEn,
          category: (v.category || "").trim(),
          unit_price_cents: price,
          low_stock_threshold: Math.max(0, Math.floor(Number(v.low_stock_threshold) || 0)),
        };
        let saved;
        if (creating) {
          saved = await api("/api/skus", { method: "POST", body: { sku: (v.sku || "").trim(), ...body } });
        } else {
          saved = await api(`/api/skus/${encodeURIComponent(sku.sku)}`, {
            method: "PATCH",
            body: { ...body, active: Boolean(v.active) },
          });
        }
        toast(t("cat.saved", { sku: saved.sku }));
        if (creating) {
          this.query = saved.sku;
          this.search.value = saved.sku;
          this.offset = 0;
        }
        this.load();
      },
    });
  }

  // ---- export ------------------------------------------------------------------------

  async exportCsv() {
    let text;
    try {
      text = await api("/api/skus/export", { headers: { Accept: "text/csv" } });
    } catch (err) {
      toast(errorText(err), "error");
      return;
    }
    // With a BOM, Excel reads the file as UTF-8 and shows the Chinese names intact.
    const url = URL.createObjectURL(new Blob(["\ufeff", text || ""], { type: "text/csv;charset=utf-8" }));
    const link = h("a", { href: url, download: "skus.csv", hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    toast(t("cat.exported", { count: Math.max(0, String(text || "").split("\n").length - 2) }));
  }

  // ---- import ------------------------------------------------------------------------

  openImport() {
    this.importState = { file: null, preview: null, busy: false, message: null, error: false };
    this.renderImport();
  }

  closeImport() {
    this.importState = null;
    this.importBox.hidden = true;
    clear(this.importBox);
  }

  renderImport() {
    const st = this.importState;
    const input = h("input", {
      type: "file",
      accept: ".csv,text/csv",
      class: "imp-file",
      testid: "import-file",
      "aria-label": t("imp.choose"),
      on: { change: () => input.files && input.files[0] && this.preview(input.files[0]) },
    });
    const apply = h(
      "button",
      {
        type: "button",
        class: "btn btn-primary",
        testid: "import-apply",
        disabled: !this.canApply(),
        on: { click: () => this.apply() },
      },
      st.busy === "apply" ? t("imp.applying") : t("imp.apply"),
    );
    const close = h(
      "button",
      { type: "button", class: "btn", testid: "import-close", on: { click: () => this.closeImport() } },
      t("imp.cancel"),
    );
    const status = h(
      "div",
      { class: st.error ? "imp-status op-error" : "imp-status", testid: "import-status", role: "status" },
      st.busy === "preview"
        ? h("p", t("imp.previewing"))
        : [
            st.stale ? h("p", t("imp.stale")) : null,
            st.preview ? this.previewMessage(st.preview) : null,
            st.message ? h("p", st.message) : null,
          ],
    );
    clear(this.importBox).append(
      h("h3", { class: "imp-title" }, t("imp.title")),
      h("p", { class: "hint" }, t("imp.hint")),
      h("label", { class: "imp-choose" }, h("span", t("imp.choose")), input),
      status,
      st.preview ? this.previewTable(st.preview) : null,
      h("div", { class: "imp-actions" }, close, apply),
    );
    this.importBox.hidden = false;
  }

  canApply() {
    const st = this.importState;
    if (!st || st.busy || !st.preview || !st.preview.valid) return false;
    const s = st.preview.summary;
    return s.create + s.update > 0;
  }

  async preview(file) {
    const st = this.importState;
    st.file = file;
    st.preview = null;
    st.busy = "preview";
    st.message = null;
    st.error = false;
    st.stale = false;
    this.renderImport();
    try {
      const preview = await api("/api/skus/import/preview", {
        method: "POST",
        body: file,
        headers: { "Content-Type": "text/csv" },
      });
      if (this.importState !== st || st.file !== file) return;
      st.preview = preview;
      st.error = !preview.valid;
    } catch (err) {
      if (this.importState !== st || st.file !== file) return;
      st.message = t("imp.failed", { message: errorText(err) });
      st.error = true;
    }
    st.busy = false;
    this.renderImport();
  }

  previewMessage(preview) {
    const s = preview.summary;
    const summary = t("imp.summary", {
      rows: s.rows,
      create: s.create,
      update: s.update,
      unchanged: s.unchanged,
      error: s.error,
      stock: s.stock_changes,
    });
    let next = t("imp.ready");
    if (!preview.valid) next = t("imp.invalid");
    else if (s.create + s.update === 0) next = t("imp.nothing");
    return [h("p", { testid: "import-summary" }, summary), h("p", next)];
  }

  async apply() {
    const st = this.importState;
    if (!this.canApply()) return;
    st.busy = "apply";
    this.renderImport();
    try {
      const done = await api(`/api/skus/import?token=${encodeURIComponent(st.preview.token)}`, {
        method: "POST",
        body: st.file,
        headers: { "Content-Type": "text/csv" },
      });
      if (this.importState !== st) return;
      toast(t("imp.done", { created: done.created, updated: done.updated, stock: done.stock_changes }));
      this.closeImport();
      this.load();
      return;
    } catch (err) {
      if (this.importState !== st) return;
      st.busy = false;
      if (err instanceof ApiError && err.status === 409) {
        await this.preview(st.file);
        st.stale = true;
        st.error = true;
      } else {
        st.message = t("imp.failed", { message: errorText(err) });
        st.error = true;
      }
      this.renderImport();
    }
  }

  previewTable(preview) {
    const shown = preview.rows.filter((r) => r.action !== "unchanged");
    const unchanged = preview.rows.length - shown.length;
    // Errors first: they are what stops the import.
    shown.sort((a, b) => (b.action === "error") - (a.action === "error") || a.line - b.line);
    const rows = shown
      .slice(0, PREVIEW_ROWS_SHOWN)
      .map((row) =>
        h(
          "tr",
          { class: `imp-${row.action}`, testid: "import-row", dataset: { action: row.action, line: row.line } },
          h("td", { class: "num" }, String(row.line)),
          h("td", h("span", { class: `cat-badge imp-badge-${row.action}` }, t(`imp.action.${row.action}`))),
          h("td", h("code", row.sku || "—")),
          h("td", { class: "imp-detail" }, row.action === "error" ? this.errorList(row) : this.changeList(row)),
        ),
      );
    return h(
      "div",
      { class: "imp-preview" },
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "imp-table", testid: "import-preview" },
          h(
            "thead",
            h(
              "tr",
              h("th", { scope: "col", class: "num" }, t("imp.col.line")),
              h("th", { scope: "col" }, t("imp.col.action")),
              h("th", { scope: "col" }, t("imp.col.sku")),
              h("th", { scope: "col" }, t("imp.col.detail")),
            ),
          ),
          h("tbody", rows),
        ),
      ),
      shown.length > PREVIEW_ROWS_SHOWN
        ? h("p", { class: "hint" }, t("imp.more", { count: shown.length - PREVIEW_ROWS_SHOWN }))
        : null,
      unchanged ? h("p", { class: "hint" }, t("imp.unchangedHidden", { count: unchanged })) : null,
    );
  }

  errorList(row) {
    return h(
      "ul",
      { class: "imp-errors" },
      row.errors.map((e) =>
        h(
          "li",
          { testid: "import-error", dataset: { column: e.column || "" } },
          h("strong", e.column ? fieldLabel(e.column) : t("imp.row")),
          " ",
          e.reason,
        ),
      ),
    );
  }

  changeList(row) {
    return h(
      "ul",
      { class: "imp-changes" },
      row.changes.map((c) =>
        h(
          "li",
          h("strong", c.location ? t("imp.stockAt", { location: c.location }) : fieldLabel(c.field)),
          " ",
          c.old === null ? null : h("del", String(c.old)),
          c.old === null ? null : " → ",
          h("ins", String(c.new)),
        ),
      ),
    );
  }
}

function fieldLabel(column) {
  const key = `imp.field.${column}`;
  const text = t(key);
  return text === key ? column : text;
}
