/**
 * Searching messages (`GET /api/search`): the results under a search box, a page at a
 * time, with the filters a person narrows them by. The staff list and the customer
 * page both use it; the server decides what each may find (a customer never finds a
 * staff-only note).
 *
 * The box searches as one types (after a short pause) and at once on Enter; Escape
 * clears it. A snippet's marks are drawn as <mark> elements around text nodes: nothing
 * the server sends is ever read as markup.
 */

import { clear, h } from "../dom.js";
import { api, errorText } from "../api.js";
import { t, tOr } from "../i18n.js";
import { fmtDateTime } from "../format.js";
import { icon } from "./icons.js";
import { isAdmin, onLang } from "./util.js";
import "./strings-search.js";
import "./strings-evidence.js";

export const SEARCH_KINDS = ["text", "image", "file", "voice", "video", "order_event", "call"];
const DEBOUNCE_MS = 250;
const PAGE_SIZE = 20;
export const MAX_QUERY_CHARS = 200;

/**
 * A snippet's text with its marked ranges as <mark> elements. The ranges count
 * characters (code points), as the server does, so a character outside the basic
 * plane does not shift the marks after it.
 * @param {string} text
 * @param {Array<[number, number]>} marks `[start, end)` offsets, in any order
 * @returns {Array<Node>}
 */
export function markedText(text, marks) {
  const chars = Array.from(String(text || ""));
  const ranges = (Array.isArray(marks) ? marks : [])
    .filter((m) => Array.isArray(m) && Number.isInteger(m[0]) && Number.isInteger(m[1]))
    .map(([start, end]) => [Math.max(0, start), Math.min(chars.length, end)])
    .filter(([start, end]) => end > start)
    .sort((a, b) => a[0] - b[0]);
  const nodes = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at) continue; // overlapping ranges: the first one wins
    if (start > at) nodes.push(document.createTextNode(chars.slice(at, start).join("")));
    nodes.push(h("mark", { class: "sr-mark" }, chars.slice(start, end).join("")));
    at = end;
  }
  if (at < chars.length) nodes.push(document.createTextNode(chars.slice(at).join("")));
  return nodes;
}

/** Local midnight of a `YYYY-MM-DD` date input's value, `days` later; null when empty. */
function dayStart(value, days = 0) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
  if (!m) return null;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days).getTime();
}

export class MessageSearch {
  /**
   * @param {{input: HTMLInputElement, me?: object,
   *          scope?: () => ({conv?: string, order?: string, label: string}|null),
   *          titleOf?: (result: object) => string,
   *          onOpen: (result: object) => void,
   *          collapseOnOpen?: boolean}} options
   *   `input` the search box (owned by the page; this listens to it); `scope` what
   *   "only here" narrows to (the open conversation or order), null when nothing is
   *   open; `titleOf` names a result's conversation; `onOpen` shows a result's message;
   *   `collapseOnOpen` folds the results away once one is opened (the box brings them back).
   */
  constructor({ input, me, scope, titleOf, onOpen, collapseOnOpen }) {
    this.input = input;
    this.me = me || null;
    this.scope = scope || (() => null);
    this.titleOf = titleOf || defaultTitle;
    this.onOpen = onOpen;
    this.collapseOnOpen = Boolean(collapseOnOpen);

    this.query = "";
    this.results = [];
    this.next = null;
    this.loading = null; // "first" | "more" | null
    this.error = null;
    this.generation = 0;
    this.timer = 0;
    this.controller = null;
    this.collapsed = false;
    this.filtersOpen = false;
    this.shown = 0;
    this.filters = { kinds: new Set(), hasFile: false, from: "", to: "", sort: "time", here: false, audit: false };

    input.maxLength = MAX_QUERY_CHARS;
    input.setAttribute("aria-controls", "search-results");
    this.onInput = () => this.schedule();
    this.onKey = (event) => this.key(event);
    this.onFocus = () => this.expand();
    input.addEventListener("input", this.onInput);
    input.addEventListener("keydown", this.onKey);
    input.addEventListener("focus", this.onFocus);
    input.addEventListener("click", this.onFocus);

    this.title = h("h3", { class: "sr-title" });
    this.filtersBtn = h("button", {
      type: "button",
      class: "btn btn-small btn-quiet sr-filters-toggle",
      testid: "search-filters-toggle",
      "aria-controls": "search-filters",
      on: { click: () => this.toggleFilters() },
    });
    this.filtersBox = h("div", { class: "sr-filters", id: "search-filters", testid: "search-filters", hidden: true });
    this.status = h("p", { class: "sr-status", testid: "search-status", role: "status", "aria-live": "polite" });
    this.list = h("ul", {
      class: "sr-list",
      id: "search-results",
      testid: "search-results",
      role: "list",
      "aria-label": t("search.label"),
    });
    this.more = h("button", {
      type: "button",
      class: "btn btn-small sr-more",
      testid: "search-more",
      hidden: true,
      on: { click: () => this.run(true) },
    });
    this.el = h(
      "section",
      { class: "sr-panel", testid: "search-panel", hidden: true },
      h("div", { class: "sr-head" }, this.title, this.filtersBtn),
      this.filtersBox,
      this.status,
      this.list,
      this.more,
    );
    this.el.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.defaultPrevented) {
        event.preventDefault();
        this.clearAll();
        this.input.focus();
      }
    });
    this.offLang = onLang(() => this.relabel());
    this.drawFilters();
    this.draw();
  }

  destroy() {
    clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
    this.offLang();
    this.input.removeEventListener("input", this.onInput);
    this.input.removeEventListener("keydown", this.onKey);
    this.input.removeEventListener("focus", this.onFocus);
    this.input.removeEventListener("click", this.onFocus);
    this.el.remove();
  }

  // ---- typing ---------------------------------------------------------------------

  schedule() {
    clearTimeout(this.timer);
    if (!this.input.value.trim()) {
      this.reset();
      return;
    }
    this.timer = setTimeout(() => this.run(false), DEBOUNCE_MS);
  }

  key(event) {
    if (event.isComposing || event.keyCode === 229) return; // an input method's own keys
    if (event.key === "Enter") {
      event.preventDefault();
      this.run(false);
    } else if (event.key === "Escape") {
      if (!this.input.value && !this.query) return;
      event.preventDefault();
      this.clearAll();
    } else if (event.key === "ArrowDown" && !this.el.hidden) {
      const first = this.list.querySelector("button");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  }

  /** Empty the box (telling whoever else filters by it) and the results. */
  clearAll() {
    if (this.input.value) {
      this.input.value = "";
      this.input.dispatchEvent(new Event("input", { bubbles: true }));
    }
    this.reset();
  }

  reset() {
    clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.generation += 1;
    this.query = "";
    this.results = [];
    this.next = null;
    this.loading = null;
    this.error = null;
    this.collapsed = false;
    this.draw();
  }

  expand() {
    if (!this.collapsed) return;
    this.collapsed = false;
    this.draw();
  }

  /** The open conversation (or order) changed: "only here" follows it. */
  scopeChanged() {
    const here = this.scope();
    const was = this.filters.here;
    if (!here) this.filters.here = false;
    this.drawFilters();
    if (this.query && (was || this.filters.here)) this.run(false);
  }

  // ---- asking the server ------------------------------------------------------------

  params(more) {
    const f = this.filters;
    const params = new URLSearchParams({ q: this.query, limit: String(PAGE_SIZE) });
    for (const kind of SEARCH_KINDS) if (f.kinds.has(kind)) params.append("kind", kind);
    if (f.hasFile) params.set("has_file", "true");
    const since = dayStart(f.from);
    const until = dayStart(f.to, 1);
    if (since !== null) params.set("since", String(since));
    if (until !== null) params.set("until", String(until));
    if (f.sort !== "time") params.set("sort", f.sort);
    const here = f.here ? this.scope() : null;
    if (here && here.conv) params.set("conv", here.conv);
    else if (here && here.order) params.set("order", here.order);
    if (f.audit && isAdmin(this.me)) params.set("audit", "true");
    if (more && this.next) params.set("cursor", this.next);
    return params;
  }

  /**
   * Search: the first page for what the box says now, or (`more`) the next page of the
   * results shown.
   * @param {boolean} more
   */
  async run(more) {
    clearTimeout(this.timer);
    if (more && !this.next) return;
    if (!more) {
      const query = this.input.value.trim().slice(0, MAX_QUERY_CHARS);
      if (!query) {
        this.reset();
        return;
      }
      // The results shown stay until the new ones come, so typing does not flicker.
      this.query = query;
      this.next = null;
    }
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.generation += 1;
    const generation = this.generation;
    this.error = null;
    this.collapsed = false;
    const since = dayStart(this.filters.from);
    const until = dayStart(this.filters.to, 1);
    if (since !== null && until !== null && since >= until) {
      this.error = t("search.badRange");
      this.results = [];
      this.loading = null;
      this.controller = null;
      this.draw();
      return;
    }
    this.loading = more ? "more" : "first";
    this.draw();
    let found;
    try {
      found = await api(`/api/search?${this.params(more)}`, { signal: controller.signal });
    } catch (err) {
      if (generation !== this.generation || (err && err.name === "AbortError")) return;
      this.error = t("search.failed", { message: errorText(err) });
      if (!more) this.results = [];
      this.loading = null;
      this.controller = null;
      this.draw();
      return;
    }
    if (generation !== this.generation) return;
    // An audit search's results say so: opening one may need the audit record instead.
    const audit = this.filters.audit && isAdmin(this.me);
    const page = (found && Array.isArray(found.results) ? found.results : [])
      .filter((r) => r && r.message && r.conversation)
      .map((r) => (audit ? { ...r, audit: true } : r));
    if (!more) this.shown = 0;
    this.results = more ? this.results.concat(page) : page;
    this.next = (found && found.next) || null;
    this.loading = null;
    this.controller = null;
    this.draw();
  }

  // ---- drawing ----------------------------------------------------------------------

  activeFilters() {
    const f = this.filters;
    return (
      (f.kinds.size ? 1 : 0) +
      (f.hasFile ? 1 : 0) +
      (f.from || f.to ? 1 : 0) +
      (f.here && this.scope() ? 1 : 0) +
      (f.audit && isAdmin(this.me) ? 1 : 0)
    );
  }

  relabel() {
    this.list.setAttribute("aria-label", t("search.label"));
    this.drawFilters();
    this.shown = 0;
    this.draw();
  }

  toggleFilters() {
    this.filtersOpen = !this.filtersOpen;
    this.draw();
  }

  /** A filter changed: search again with it, when there is something to search for. */
  changed() {
    this.drawFilters();
    this.draw();
    if (this.input.value.trim() || this.query) this.run(false);
  }

  drawFilters() {
    const f = this.filters;
    const kinds = h(
      "div",
      { class: "sr-kinds", role: "group", "aria-label": t("search.kinds") },
      SEARCH_KINDS.map((kind) => {
        const on = f.kinds.has(kind);
        return h(
          "button",
          {
            type: "button",
            class: on ? "chip active" : "chip",
            "aria-pressed": on ? "true" : "false",
            testid: `search-kind-${kind}`,
            on: {
              click: () => {
                if (f.kinds.has(kind)) f.kinds.delete(kind);
                else f.kinds.add(kind);
                this.changed();
              },
            },
          },
          t(`search.kind.${kind}`),
        );
      }),
    );
    const check = (testid, label, value, set) =>
      h(
        "label",
        { class: "sr-check" },
        h("input", {
          type: "checkbox",
          testid,
          checked: value,
          on: {
            change: (event) => {
              set(event.target.checked);
              this.changed();
            },
          },
        }),
        h("span", null, label),
      );
    const date = (testid, label, key) =>
      h(
        "label",
        { class: "sr-date" },
        h("span", null, label),
        h("input", {
          type: "date",
          testid,
          value: f[key] || null,
          on: {
            change: (event) => {
              f[key] = event.target.value || "";
              this.changed();
            },
          },
        }),
      );
    const sort = h(
      "select",
      {
        testid: "search-sort",
        "aria-label": t("search.sort"),
        on: {
          change: (event) => {
            f.sort = event.target.value === "relevance" ? "relevance" : "time";
            this.changed();
          },
        },
      },
      h("option", { value: "time" }, t("search.sortTime")),
      h("option", { value: "relevance" }, t("search.sortRelevance")),
    );
    sort.value = f.sort;
    const here = this.scope();
    // An admin's audit search reads every conversation, recalled messages included,
    // and is itself on the audit log.
    const audit = isAdmin(this.me)
      ? h(
          "div",
          { class: "sr-row sr-audit" },
          check("search-audit", t("search.audit"), f.audit, (v) => {
            f.audit = v;
          }),
          h("span", { class: "sr-audit-hint" }, t("search.auditHint")),
        )
      : null;
    clear(this.filtersBox).append(
      kinds,
      h(
        "div",
        { class: "sr-row" },
        check("search-has-file", t("search.hasFile"), f.hasFile, (v) => {
          f.hasFile = v;
        }),
        here
          ? check("search-here", here.label, f.here, (v) => {
              f.here = v;
            })
          : null,
      ),
      h(
        "div",
        { class: "sr-row" },
        date("search-from", t("search.from"), "from"),
        date("search-to", t("search.to"), "to"),
      ),
      audit,
      h(
        "div",
        { class: "sr-row" },
        h("label", { class: "sr-sort" }, h("span", null, t("search.sort")), sort),
        this.activeFilters() || f.sort !== "time"
          ? h(
              "button",
              {
                type: "button",
                class: "btn btn-small btn-quiet",
                testid: "search-reset",
                on: {
                  click: () => {
                    this.filters = {
                      kinds: new Set(),
                      hasFile: false,
                      from: "",
                      to: "",
                      sort: "time",
                      here: false,
                      audit: false,
                    };
                    this.changed();
                  },
                },
              },
              t("search.reset"),
            )
          : null,
      ),
    );
  }

  draw() {
    const active = Boolean(this.query) || this.loading === "first" || Boolean(this.error);
    this.el.hidden = !active || this.collapsed;
    this.el.dataset.state = this.loading ? "loading" : this.error ? "error" : "done";
    this.title.textContent = t("search.messages");
    const count = this.activeFilters();
    this.filtersBtn.textContent = count ? t("search.filtersOn", { count }) : t("search.filters");
    this.filtersBtn.setAttribute("aria-expanded", this.filtersOpen ? "true" : "false");
    this.filtersBtn.classList.toggle("active", count > 0);
    this.filtersBox.hidden = !this.filtersOpen;

    if (this.shown > this.results.length || (this.shown === 0 && this.list.firstChild)) {
      clear(this.list);
      this.shown = 0;
    }
    for (const result of this.results.slice(this.shown)) this.list.append(this.row(result));
    this.shown = this.results.length;

    let status = "";
    if (this.error) status = this.error;
    else if (this.loading === "first") status = t("search.searching");
    else if (this.query && !this.results.length) status = t(count ? "search.noneFiltered" : "search.none");
    this.status.textContent = status;
    this.status.hidden = !status;
    this.status.classList.toggle("sr-error", Boolean(this.error));
    this.status.setAttribute("role", this.error ? "alert" : "status");

    this.more.hidden = !this.next || this.loading === "first" || Boolean(this.error);
    this.more.disabled = this.loading === "more";
    this.more.textContent = this.loading === "more" ? t("search.loadingMore") : t("search.more");
  }

  row(result) {
    const m = result.message;
    const where = this.titleOf(result) || "";
    const mine = this.me && m.sender === this.me.id;
    const who = mine ? t("search.me") : result.sender_name || "";
    const when = m.ts ? fmtDateTime(m.ts) : "";
    const kind = m.kind && m.kind !== "text" ? tOr(`search.kind.${m.kind}`, m.kind) : null;
    const snippet = result.snippet && typeof result.snippet === "object" ? result.snippet : {};
    const text = typeof snippet.text === "string" ? snippet.text : m.text || "";
    const button = h(
      "button",
      {
        type: "button",
        class: ["sr-hit", result.recalled ? "is-recalled" : null, m.internal ? "is-internal" : null],
        testid: "search-result",
        dataset: { convId: result.conversation.id, seq: m.seq, msgId: m.id, kind: m.kind },
        on: { click: () => this.open(result) },
      },
      h(
        "span",
        { class: "sr-line" },
        h("span", { class: "sr-where", testid: "search-result-where" }, where),
        h("time", { class: "sr-when", datetime: m.ts ? new Date(m.ts).toISOString() : null }, when),
      ),
      h(
        "span",
        { class: "sr-line sr-text" },
        who ? h("span", { class: "sr-who", testid: "search-result-sender" }, who) : null,
        kind ? h("span", { class: "sr-kind" }, kind) : null,
        result.recalled
          ? h("span", { class: "sr-kind sr-recalled", testid: "search-recalled" }, t("search.recalled"))
          : null,
        m.internal
          ? h("span", { class: "sr-kind sr-internal", testid: "search-internal" }, t("search.internal"))
          : null,
        h("span", { class: "sr-snippet", testid: "search-snippet" }, markedText(text, snippet.marks)),
      ),
    );
    return h("li", { class: "sr-item" }, button);
  }

  open(result) {
    for (const node of this.list.querySelectorAll(".sr-hit.active")) node.classList.remove("active");
    const button = this.list.querySelector(
      `.sr-hit[data-conv-id="${CSS.escape(result.conversation.id)}"][data-seq="${Number(result.message.seq)}"]`,
    );
    if (button) button.classList.add("active");
    if (this.collapseOnOpen) {
      this.collapsed = true;
      this.draw();
    }
    this.onOpen(result);
  }
}

/** A result's place: its order's number, else its conversation's title. */
function defaultTitle(result) {
  if (result.order && result.order.number) return result.order.number;
  return result.conversation.title || "";
}

/** An icon for the search field a page draws itself. */
export function searchIcon() {
  return icon("search", "search-icon");
}
