/**
 * One message's audit record for an admin (`GET /api/conversations/{id}/messages/{seq}/audit`):
 * the text as first sent, who recalled it and when, every later edit and the hashes.
 * An audit search opens it for a recalled message, or for one in a conversation the
 * admin is not a member of and so cannot open.
 */

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtDateTime } from "../format.js";
import { infoDialog } from "./dialogs.js";
import "./strings-evidence.js";

/**
 * @param {{conversation: {id: string}, message: {seq: number}}} result a search result
 * @param {string} where the conversation's name, for the title
 * @param {(id: string) => string} nameOf a person's name from their id
 */
export async function showMessageAudit(result, where, nameOf) {
  const body = h("div", { class: "ma-body", testid: "message-audit" }, h("p", t("common.loading")));
  infoDialog(t("ma.title", { where }), body);
  try {
    const path = `/api/conversations/${encodeURIComponent(result.conversation.id)}/messages/${Number(
      result.message.seq,
    )}/audit`;
    const record = await api(path);
    const m = record.message || {};
    const rows = [
      [t("ma.sender"), nameOf(m.sender)],
      [t("ma.sent"), m.ts ? fmtDateTime(m.ts) : ""],
      record.recalled_ts
        ? [t("ma.recalled"), `${fmtDateTime(record.recalled_ts)} · ${nameOf(record.recalled_by || "")}`]
        : null,
      [t("ma.hash"), h("code", { class: "ma-hash" }, record.hash || "")],
    ].filter(Boolean);
    body.replaceChildren(
      h("dl", { class: "op-dl" }, ...rows.map(([k, v]) => [h("dt", k), h("dd", v)])),
      h("p", { class: "ma-label" }, t("ma.original")),
      h("blockquote", { class: "ma-text", testid: "message-audit-text", dir: "auto" }, m.text || "—"),
      ...(record.edits || []).map((e) =>
        h(
          "div",
          { class: "ma-edit" },
          h("p", { class: "ma-label" }, t("ma.edit", { version: e.version, when: fmtDateTime(e.ts) })),
          h("blockquote", { class: "ma-text", dir: "auto" }, e.text || "—"),
        ),
      ),
    );
  } catch (err) {
    body.replaceChildren(h("p", { class: "ev-error", role: "alert" }, errorText(err)));
  }
}
