/**
 * The admin console's Consults tab (`#/admin/consults`, docs/consults.md §1): the ways
 * a visitor reaches the shop before ordering. The QR code for a tag
 * (`GET /api/admin/qr?format=svg|png&tag=…`, shown and downloadable), the `/chat`
 * link, and the widget snippet a shop puts on its own site.
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { errorFromBody, errorText, languageHeaders } from "../api.js";
import { getSession } from "../session.js";
import { icon } from "./icons.js";
import { onLang, toast } from "./util.js";
import "./strings-consults.js";

const TAG = /^[A-Za-z0-9_-]{1,64}$/;
const DEFAULT_TAG = "counter";

/**
 * An admin-only picture of the QR code, as a blob (an <img> cannot carry the token),
 * and the address it encodes (`X-Chat-Url`: the server's public address, which may
 * not be the one this page was opened at).
 * @param {"svg"|"png"} format
 * @param {string} tag
 * @returns {Promise<{blob: Blob, url: string|null}>}
 */
async function fetchQr(format, tag) {
  const params = new URLSearchParams({ format });
  if (tag) params.set("tag", tag);
  const headers = { ...languageHeaders() };
  const session = getSession();
  if (session) headers.Authorization = `Bearer ${session.token}`;
  const response = await fetch(`/api/admin/qr?${params}`, { headers, credentials: "same-origin" });
  if (!response.ok) {
    const text = await response.text();
    throw errorFromBody(response.status, text, response.headers.get("Retry-After"));
  }
  return { blob: await response.blob(), url: response.headers.get("X-Chat-Url") };
}

/** A text field people copy from, with its copy button. */
function copyRow(value, testid, multiline) {
  const field = multiline
    ? h("textarea", { class: "cs-snippet", testid, readonly: true, rows: "3", spellcheck: "false" })
    : h("input", { class: "admin-link", testid, readonly: true });
  field.value = value;
  const copy = h("button", { type: "button", class: "btn btn-small", testid: `${testid}-copy` }, t("cs.admin.copy"));
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      copy.textContent = t("cs.admin.copied");
    } catch {
      field.select();
      toast(t("cs.admin.copyFailed"), "error");
    }
  });
  field.addEventListener("focus", () => field.select());
  return { el: h("div", { class: "cs-admin-row" }, field, copy), field };
}

export class ConsultsAdminView {
  constructor() {
    this.tag = DEFAULT_TAG;
    // Where the shop is reached from outside: this page's origin until the server says.
    this.base = location.origin;
    this.qrUrl = null;
    this.asked = 0;
    this.gone = false;
    this.el = h("div", { class: "cs-admin", testid: "admin-consults" });
    this.offLang = onLang(() => this.render());
    this.render();
  }

  async load() {
    await this.showQr();
  }

  destroy() {
    this.gone = true;
    this.offLang();
    if (this.qrUrl) URL.revokeObjectURL(this.qrUrl);
  }

  /** The page people open: `/chat`, with the tag when one is given. */
  chatLink(tag) {
    const url = new URL(`${this.base}/chat`);
    if (tag) {
      url.searchParams.set("src", "qr");
      url.searchParams.set("tag", tag);
    }
    return url.href;
  }

  snippet() {
    const src = new URL(`${this.base}/widget.js`).href;
    return `<script src="${src}" data-sku="" async></script>`;
  }

  render() {
    this.tagInput = h("input", {
      id: "cs-admin-tag",
      testid: "admin-qr-tag",
      value: this.tag,
      maxlength: "64",
      autocomplete: "off",
      spellcheck: "false",
    });
    this.tagError = h("p", { class: "dlg-error", role: "alert", hidden: true }, t("cs.admin.tagBad"));
    this.qrBox = h("div", { class: "cs-qr", testid: "admin-qr" });
    this.qrStatus = h("p", { class: "op-muted", role: "status" });
    this.link = copyRow(this.chatLink(""), "admin-chat-link", false);
    this.qrLink = h("code", { class: "cs-qr-url", testid: "admin-qr-url" }, this.chatLink(this.tag));
    const apply = () => {
      const tag = this.tagInput.value.trim();
      const ok = tag === "" || TAG.test(tag);
      this.tagError.hidden = ok;
      if (!ok || tag === this.tag) return;
      this.tag = tag;
      this.qrLink.textContent = this.chatLink(tag);
      this.showQr();
    };
    this.tagInput.addEventListener("change", apply);
    this.tagInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        apply();
      }
    });
    const snippet = copyRow(this.snippet(), "admin-widget-snippet", true);
    this.snippetField = snippet.field;
    const download = (format) =>
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          testid: `admin-qr-${format}`,
          on: { click: () => this.download(format) },
        },
        icon("download"),
        h("span", t(format === "png" ? "cs.admin.png" : "cs.admin.svg")),
      );
    clear(this.el).append(
      h("p", { class: "page-note" }, t("cs.admin.intro")),
      h(
        "section",
        { class: "cs-admin-card", testid: "admin-qr-card" },
        h("h2", t("cs.admin.qr")),
        h("div", { class: "cs-admin-row" }, h("label", { for: "cs-admin-tag" }, t("cs.admin.tag")), this.tagInput),
        h("p", { class: "hint" }, t("cs.admin.tagHint")),
        this.tagError,
        this.qrBox,
        this.qrLink,
        this.qrStatus,
        h("div", { class: "cs-admin-row" }, download("png"), download("svg")),
      ),
      h(
        "section",
        { class: "cs-admin-card", testid: "admin-chat-link-card" },
        h("h2", t("cs.admin.link")),
        h("p", { class: "hint" }, t("cs.admin.linkHint")),
        this.link.el,
      ),
      h(
        "section",
        { class: "cs-admin-card", testid: "admin-widget-card" },
        h("h2", t("cs.admin.widget")),
        h("p", { class: "hint" }, t("cs.admin.widgetHint")),
        snippet.el,
      ),
    );
    if (this.qrUrl) this.qrBox.append(this.qrImage());
  }

  qrImage() {
    return h("img", { src: this.qrUrl, alt: t("cs.admin.qrAlt"), testid: "admin-qr-image" });
  }

  async showQr() {
    const seq = ++this.asked;
    const tag = this.tag;
    this.qrStatus.textContent = t("common.loading");
    try {
      const { blob, url } = await fetchQr("svg", tag);
      if (this.gone || seq !== this.asked) return;
      const base = url ? url.replace(/\/chat(?:\?.*)?$/, "") : null;
      if (base && base !== url && base !== this.base) {
        this.base = base;
        this.link.field.value = this.chatLink("");
        this.snippetField.value = this.snippet();
      }
      if (url) this.qrLink.textContent = url;
      if (this.qrUrl) URL.revokeObjectURL(this.qrUrl);
      this.qrUrl = URL.createObjectURL(blob.type ? blob : new Blob([blob], { type: "image/svg+xml" }));
      clear(this.qrBox).append(this.qrImage());
      this.qrBox.dataset.tag = tag;
      this.qrStatus.textContent = "";
    } catch (err) {
      if (this.gone || seq !== this.asked) return;
      clear(this.qrBox);
      this.qrStatus.textContent = t("cs.admin.qrFailed", { message: errorText(err) });
    }
  }

  async download(format) {
    try {
      const { blob } = await fetchQr(format, this.tag);
      const url = URL.createObjectURL(blob);
      const link = h("a", {
        href: url,
        download: `orderchat-qr${this.tag ? `-${this.tag}` : ""}.${format}`,
        hidden: true,
      });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      toast(t("cs.admin.qrFailed", { message: errorText(err) }), "error");
    }
  }
}
