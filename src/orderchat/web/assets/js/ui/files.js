/**
 * The file library of a conversation or an order: pictures in a grid, other files as a
 * list with name, size, date and sender, filtered by kind and paged by `next`
 * (GET /api/conversations/{id}/files, GET /api/orders/{id}/files).
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtBytes, fmtDay } from "../format.js";
import { icon } from "./icons.js";
import { infoDialog, lightbox } from "./dialogs.js";
import { userName } from "./util.js";
import "./strings-convs.js";

const KINDS = [
  ["", "lib.all"],
  ["image", "lib.images"],
  ["video", "lib.videos"],
  ["voice", "lib.voice"],
  ["file", "lib.files"],
];
const PAGE = 60;

function isPicture(f) {
  return f.message_kind === "image" || (f.type || "").startsWith("image/");
}

function thumbOf(f) {
  const p = f.preview || {};
  return p.status === "ready" && p.url ? p.url : f.url;
}

/**
 * Open the library over the page.
 * @param {{convId: string, orderId?: string|null, members: Map<string, object>}} options
 * @returns {HTMLDialogElement}
 */
export function openFileLibrary({ convId, orderId, members }) {
  const base = orderId
    ? `/api/orders/${encodeURIComponent(orderId)}/files`
    : `/api/conversations/${encodeURIComponent(convId)}/files`;
  const state = { kind: "", next: null, token: 0 };
  const chips = h("div", { class: "lib-kinds", role: "tablist", "aria-label": t("lib.title") });
  const grid = h("div", { class: "lib-grid", testid: "lib-grid" });
  const list = h("ul", { class: "lib-list", testid: "lib-list" });
  const status = h("p", { class: "lib-status", testid: "lib-status", role: "status" });
  const more = h("button", { type: "button", class: "btn btn-small", testid: "lib-more", hidden: true }, t("lib.more"));

  const drawChips = () => {
    clear(chips);
    for (const [kind, label] of KINDS)
      chips.append(
        h(
          "button",
          {
            type: "button",
            role: "tab",
            class: kind === state.kind ? "chip active" : "chip",
            "aria-selected": kind === state.kind ? "true" : "false",
            testid: `lib-kind-${kind || "all"}`,
            on: {
              click: () => {
                state.kind = kind;
                drawChips();
                load(true);
              },
            },
          },
          t(label),
        ),
      );
  };

  const picture = (f) =>
    h(
      "button",
      {
        type: "button",
        class: "lib-pic",
        testid: "lib-picture",
        title: f.name || "",
        "aria-label": f.name || t("lib.images"),
        on: { click: () => lightbox({ url: f.url, name: f.name }) },
      },
      h("img", { src: thumbOf(f), alt: f.name || "", loading: "lazy", decoding: "async" }),
    );

  const row = (f) =>
    h(
      "li",
      { class: "lib-row", testid: "lib-file", dataset: { kind: f.message_kind || "" } },
      h("span", { class: "lib-icon", "aria-hidden": "true" }, icon(f.message_kind === "video" ? "video" : "file")),
      h(
        "span",
        { class: "lib-main" },
        h("span", { class: "lib-name", testid: "lib-name" }, f.name || ""),
        h(
          "span",
          { class: "lib-meta" },
          [fmtBytes(f.size || 0), fmtDay(f.ts), userName(members, f.sender), f.recalled ? t("lib.recalled") : null]
            .filter(Boolean)
            .join(" · "),
        ),
      ),
      h(
        "a",
        {
          class: "btn btn-small",
          href: f.url,
          download: f.name || "",
          testid: "lib-download",
          "aria-label": `${t("lib.download")} ${f.name || ""}`,
        },
        icon("download"),
        h("span", { class: "lib-dl-label" }, t("lib.download")),
      ),
    );

  async function load(fresh) {
    const token = ++state.token;
    if (fresh) {
      clear(grid);
      clear(list);
      state.next = null;
    }
    status.textContent = t("lib.loading");
    status.hidden = false;
    more.hidden = true;
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (state.kind) params.set("kind", state.kind);
    if (!fresh && state.next) params.set("before", String(state.next));
    let page;
    try {
      page = await api(`${base}?${params}`);
    } catch (err) {
      if (token !== state.token) return;
      status.textContent = t("lib.failed", { message: errorText(err) });
      return;
    }
    if (token !== state.token) return;
    for (const f of page.files || []) {
      if (isPicture(f)) grid.append(picture(f));
      else list.append(row(f));
    }
    state.next = page.next || null;
    more.hidden = !state.next;
    const empty = grid.children.length === 0 && list.children.length === 0;
    status.textContent = empty ? t("lib.empty") : "";
    status.hidden = !empty;
    grid.hidden = grid.children.length === 0;
    list.hidden = list.children.length === 0;
  }

  more.addEventListener("click", () => load(false));
  drawChips();
  const dialog = infoDialog(
    orderId ? t("lib.titleOrder") : t("lib.title"),
    h("div", { class: "lib", testid: "file-library" }, chips, status, grid, list, more),
  );
  dialog.classList.add("dlg-wide");
  load(true);
  return dialog;
}
