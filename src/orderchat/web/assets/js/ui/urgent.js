/**
 * An urgent message's state beside its badge: open with a "mark handled" button for
 * staff, or who handled it and when. The state comes from
 * GET /api/conversations/{id}/urgent and live `handled` events (docs/conversations.md).
 */

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtDateTime } from "../format.js";
import { isStaff, toast, userName } from "./util.js";
import "./strings-convs.js";

/**
 * @param {object} m the urgent message
 * @param {{handled_by?: string, handled_ts?: number}|undefined} state
 * @param {{me: object, members: Map<string, object>}} who
 * @returns {HTMLElement|null}
 */
export function urgentStatus(m, state, { me, members }) {
  if (!m.urgent || m.recalled) return null;
  if (state && state.handled_by)
    return h(
      "span",
      { class: "urgent-handled", testid: "urgent-handled", dataset: { by: state.handled_by } },
      t("urg.handled", { name: userName(members, state.handled_by), when: fmtDateTime(state.handled_ts) }),
    );
  if (!isStaff(me)) return null;
  const button = h(
    "button",
    { type: "button", class: "btn btn-small urgent-handle", testid: "urgent-handle" },
    t("urg.handle"),
  );
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/api/conversations/${encodeURIComponent(m.conv)}/messages/${m.seq}/handled`, { method: "POST" });
    } catch (err) {
      button.disabled = false;
      toast(t("urg.failed", { message: errorText(err) }), "error");
    }
  });
  return button;
}

/**
 * Load the handled state of a conversation's urgent messages.
 * @param {string} convId
 * @returns {Promise<object[]>}
 */
export async function loadUrgent(convId) {
  const found = await api(`/api/conversations/${encodeURIComponent(convId)}/urgent`);
  return (found && found.urgent) || [];
}
