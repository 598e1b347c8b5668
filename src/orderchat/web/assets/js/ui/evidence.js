/**
 * The admin console's retention and proof sections (docs/proof.md).
 *
 * Retention (`#/admin/retention`, `/api/admin/retention`): how many days each kind of
 * conversation keeps its content (or forever, the default), purging now instead of at
 * the daily run, the orders on legal hold and the recent purges.
 *
 * Proof (`#/admin/proof`, `/api/admin/anchors`): the server's Ed25519 public key, which
 * signs every conversation's chain head daily, and the recent anchors.
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtDateTime } from "../format.js";
import { confirmDialog } from "./dialogs.js";
import { toast } from "./util.js";
import "./strings-evidence.js";

export const RETENTION_KINDS = ["channel", "direct", "order", "consult"];
const MIN_DAYS = 1;
const MAX_DAYS = 36500;
const DIGEST_SHOWN = 12;

/**
 * A button that copies `text` and says so; on a browser that refuses, `fallback` (an
 * input holding the text) is selected for copying by hand.
 * @param {string} text
 * @param {string} testid
 * @param {string} labelKey
 * @param {HTMLInputElement} [fallback]
 * @returns {HTMLButtonElement}
 */
export function copyButton(text, testid, labelKey, fallback) {
  const button = h("button", { type: "button", class: "btn btn-small", testid }, t(labelKey));
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = t("proof.copied");
      setTimeout(() => {
        if (button.isConnected) button.textContent = t(labelKey);
      }, 2000);
    } catch {
      if (fallback) fallback.select();
      toast(t("proof.copyFailed"), "error");
    }
  });
  return button;
}

function section(title, testid, ...body) {
  return h("section", { class: "ev-card", testid }, h("h2", { class: "ev-title" }, title), ...body);
}

export class RetentionView {
  constructor() {
    this.data = null;
    this.closed = false;
    this.status = h("p", { class: "admin-status", role: "status" }, t("ret.loading"));
    this.body = h("div", { class: "ev-body" });
    this.ran = h("p", { class: "ev-ran", testid: "ret-ran", role: "status", hidden: true });
    this.el = h(
      "div",
      { class: "retention", testid: "retention" },
      h("p", { class: "hooks-intro" }, t("ret.intro")),
      h("p", { class: "ev-chain", testid: "ret-chain" }, t("ret.chain")),
      this.status,
      this.body,
    );
  }

  async load() {
    try {
      const answer = await api("/api/admin/retention");
      if (this.closed) return;
      this.data = answer || {};
      this.status.hidden = true;
      this.render();
    } catch (err) {
      if (this.closed) return;
      this.status.hidden = false;
      this.status.textContent = t("ret.loadFailed", { message: errorText(err) });
    }
  }

  destroy() {
    this.closed = true;
  }

  render() {
    const rules = (this.data && this.data.rules) || {};
    const held = (this.data && Array.isArray(this.data.held) && this.data.held) || [];
    const purges = (this.data && Array.isArray(this.data.purges) && this.data.purges) || [];
    const runLabel = h("span", t("ret.run"));
    const run = h("button", { type: "button", class: "btn btn-small btn-danger-outline", testid: "ret-run" }, runLabel);
    run.addEventListener("click", () => this.run(run, runLabel));
    clear(this.body).append(
      section(
        t("ret.title"),
        "ret-rules",
        h(
          "div",
          { class: "ret-rules" },
          RETENTION_KINDS.map((kind) => this.ruleRow(kind, rules[kind])),
        ),
      ),
      section(
        t("ret.run"),
        "ret-run-section",
        h("p", { class: "hint" }, t("ret.runText"), " ", t("ret.daily")),
        h("div", { class: "admin-actions" }, run),
        this.ran,
      ),
      section(
        t("ret.held"),
        "ret-held-section",
        h("p", { class: "hint" }, t("ret.heldHint")),
        held.length
          ? h(
              "ul",
              { class: "ev-list", testid: "ret-held" },
              held.map((o) =>
                h(
                  "li",
                  { class: "ev-held", testid: "ret-held-order", dataset: { id: o.id } },
                  h("span", { class: "hold-badge" }, t("hold.on")),
                  h("span", { class: "ev-number" }, String(o.number || o.id)),
                ),
              ),
            )
          : h("p", { class: "admin-status", testid: "ret-held-none" }, t("ret.heldNone")),
      ),
      section(
        t("ret.purges"),
        "ret-purges-section",
        purges.length
          ? h(
              "ul",
              { class: "ev-list", testid: "ret-purges" },
              purges.map((p) =>
                h(
                  "li",
                  { class: "ev-purge", testid: "ret-purge" },
                  t("ret.purge", {
                    when: fmtDateTime(p.ts),
                    conv: p.conv,
                    first: p.first_seq,
                    last: p.last_seq,
                    messages: p.messages ?? 0,
                    files: p.files ?? 0,
                  }),
                ),
              ),
            )
          : h("p", { class: "admin-status", testid: "ret-purges-none" }, t("ret.purgesNone")),
      ),
    );
  }

  ruleRow(kind, days) {
    const kept = days === null || days === undefined;
    const id = `ret-days-${kind}`;
    const input = h("input", {
      id,
      type: "number",
      class: "ret-days",
      testid: "ret-days",
      inputmode: "numeric",
      min: String(MIN_DAYS),
      max: String(MAX_DAYS),
      step: "1",
      value: kept ? null : String(days),
      disabled: kept,
      "aria-label": `${t(`ret.kind.${kind}`)} · ${t("ret.days")}`,
    });
    const forever = h("input", { type: "checkbox", testid: "ret-forever", checked: kept });
    forever.addEventListener("change", () => {
      input.disabled = forever.checked;
      if (!forever.checked) {
        if (!input.value) input.value = "365";
        input.focus();
      }
    });
    const error = h("p", { class: "ev-error", role: "alert", hidden: true });
    const save = h("button", { type: "submit", class: "btn btn-small btn-primary", testid: "ret-save" }, t("ret.save"));
    const form = h(
      "form",
      {
        class: "ret-row",
        testid: "ret-row",
        dataset: { kind, days: kept ? "forever" : String(days) },
        novalidate: true,
      },
      h("div", { class: "ret-kind" }, h("label", { for: id }, t(`ret.kind.${kind}`))),
      h(
        "p",
        { class: "admin-seen ret-current", testid: "ret-current" },
        kept ? t("ret.current.forever") : t("ret.current.days", { days }),
      ),
      h(
        "div",
        { class: "ret-controls" },
        h("span", { class: "ret-days-box" }, input, h("span", { class: "ret-unit" }, t("ret.daysUnit"))),
        h("label", { class: "ret-forever" }, forever, h("span", t("ret.forever"))),
        save,
      ),
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      let chosen = null;
      if (!forever.checked) {
        const n = Number(input.value);
        if (!input.value || !Number.isInteger(n) || n < MIN_DAYS || n > MAX_DAYS) {
          error.textContent = t("ret.badDays", { low: MIN_DAYS, high: MAX_DAYS });
          error.hidden = false;
          input.focus();
          return;
        }
        chosen = n;
      }
      save.disabled = true;
      try {
        const answer = await api("/api/admin/retention", { method: "PUT", body: { kind, days: chosen } });
        if (this.closed) return;
        this.data = answer || this.data;
        toast(t("ret.saved", { kind: t(`ret.kind.${kind}`) }));
        this.render();
      } catch (err) {
        error.textContent = errorText(err);
        error.hidden = false;
        save.disabled = false;
      }
    });
    return form;
  }

  async run(button, label) {
    const ok = await confirmDialog(t("ret.runTitle"), t("ret.runText"));
    if (!ok) return;
    button.disabled = true;
    label.textContent = t("ret.running");
    try {
      const done = await api("/api/admin/retention/run", { method: "POST" });
      const text = t("ret.ran", {
        conversations: (done && done.conversations) || 0,
        messages: (done && done.messages) || 0,
        files: (done && done.files) || 0,
      });
      toast(text);
      await this.load();
      this.ran.textContent = text;
      this.ran.hidden = false;
    } catch (err) {
      toast(t("ret.runFailed", { message: errorText(err) }), "error");
    } finally {
      button.disabled = false;
      label.textContent = t("ret.run");
    }
  }
}

export class ProofView {
  constructor() {
    this.closed = false;
    this.status = h("p", { class: "admin-status", role: "status" }, t("proof.loading"));
    this.body = h("div", { class: "ev-body" });
    this.el = h(
      "div",
      { class: "proof", testid: "proof" },
      h("p", { class: "hooks-intro" }, t("proof.intro")),
      this.status,
      this.body,
    );
  }

  async load() {
    try {
      const answer = await api("/api/admin/anchors");
      if (this.closed) return;
      this.status.hidden = true;
      this.render(answer || {});
    } catch (err) {
      if (this.closed) return;
      this.status.hidden = false;
      this.status.textContent = t("proof.loadFailed", { message: errorText(err) });
    }
  }

  destroy() {
    this.closed = true;
  }

  render(data) {
    const key = String(data.public_key || "");
    const keyId = String(data.key_id || "");
    const anchors = Array.isArray(data.anchors) ? data.anchors : [];
    const keyField = h("input", {
      id: "proof-key",
      class: "admin-link",
      testid: "proof-key",
      readonly: true,
      value: key,
    });
    keyField.addEventListener("focus", () => keyField.select());
    const idField = h("input", {
      id: "proof-key-id",
      class: "admin-link",
      testid: "proof-key-id",
      readonly: true,
      value: keyId,
    });
    idField.addEventListener("focus", () => idField.select());
    clear(this.body).append(
      section(
        t("proof.keyTitle"),
        "proof-key-section",
        h("label", { class: "ev-label", for: "proof-key" }, t("proof.key")),
        h("div", { class: "admin-link-row" }, keyField, copyButton(key, "proof-key-copy", "proof.copy", keyField)),
        h("label", { class: "ev-label", for: "proof-key-id" }, t("proof.keyId")),
        h("div", { class: "admin-link-row" }, idField, copyButton(keyId, "proof-key-id-copy", "proof.copy", idField)),
      ),
      section(
        t("proof.anchors"),
        "proof-anchors-section",
        anchors.length
          ? h(
              "table",
              { class: "admin-table ev-anchors", testid: "proof-anchors" },
              h(
                "thead",
                h(
                  "tr",
                  ["time", "conversations", "digest"].map((c) => h("th", { scope: "col" }, t(`proof.col.${c}`))),
                ),
              ),
              h(
                "tbody",
                anchors.map((a) => this.anchorRow(a)),
              ),
            )
          : h("p", { class: "admin-status", testid: "proof-anchors-none" }, t("proof.anchorsNone")),
      ),
    );
  }

  anchorRow(anchor) {
    const digest = String(anchor.digest || "");
    const short = digest.length > DIGEST_SHOWN ? `${digest.slice(0, DIGEST_SHOWN)}…` : digest;
    return h(
      "tr",
      { testid: "proof-anchor", dataset: { id: anchor.id } },
      h("td", h("time", { datetime: new Date(anchor.ts).toISOString() }, fmtDateTime(anchor.ts))),
      h(
        "td",
        { class: "ev-count", testid: "proof-anchor-conversations" },
        t("proof.convs", { count: anchor.conversations ?? 0 }),
      ),
      h(
        "td",
        h(
          "div",
          { class: "ev-digest" },
          h("code", { testid: "proof-digest", title: digest, dataset: { digest } }, short),
          copyButton(digest, "proof-digest-copy", "proof.copyDigest"),
        ),
      ),
    );
  }
}
