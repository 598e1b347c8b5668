/**
 * An urgent message's record for its sender: each recipient, whether they have read
 * it, and every step of the ladder (the first word, then the reminders) with its
 * channel, state and time (GET …/messages/{seq}/reminders, docs/notifications.md).
 * It refreshes while open, so the sender watches it climb and stop.
 */

import { h, clear } from "../dom.js";
import { t, tOr } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtTime } from "../format.js";
import "./strings-notify.js";

const REFRESH_S = 3;

/**
 * The button beside an urgent message the reader sent.
 * @param {object} m the message
 * @param {RemindersContext} context
 * @returns {HTMLButtonElement}
 */
export function remindersButton(m, context) {
  return h(
    "button",
    {
      type: "button",
      class: "btn btn-small reminders-open",
      testid: "reminders-open",
      on: { click: () => openReminders(m, context) },
    },
    t("rem.open"),
  );
}

/**
 * @typedef {object} RemindersContext what the timeline knows about the conversation
 * @property {(id: string) => string} nameOf a person's display name
 * @property {() => string[]} audience who could read the message (besides its sender)
 * @property {(id: string) => boolean} hasRead from the live read marks
 */

/**
 * Open the panel; it polls until closed.
 * @param {object} m
 * @param {RemindersContext} context
 */
export function openReminders(m, context) {
  const list = h("ul", { class: "rem-list", testid: "reminders-list" });
  const status = h("p", { class: "rem-status", role: "status" }, t("rem.loading"));
  const close = h("button", { type: "button", class: "btn btn-primary", testid: "reminders-close" }, t("dlg.close"));
  const dialog = h(
    "dialog",
    { class: "dlg rem-dialog", testid: "reminders-panel", "aria-labelledby": "rem-title" },
    h(
      "div",
      { class: "dlg-form" },
      h("header", { class: "dlg-head" }, h("h2", { class: "dlg-title", id: "rem-title" }, t("rem.title"))),
      h("div", { class: "dlg-body" }, list, status, h("p", { class: "hint" }, t("rem.auto", { seconds: REFRESH_S }))),
      h("footer", { class: "dlg-foot" }, close),
    ),
  );
  const path = `/api/conversations/${encodeURIComponent(m.conv)}/messages/${m.seq}/reminders`;
  let timer = null;
  const refresh = async () => {
    try {
      const answer = await api(path);
      if (!dialog.isConnected) return;
      draw(list, people(answer.recipients || [], context), context);
      status.textContent = t("rem.updated", { time: fmtTime(Date.now()) });
    } catch (err) {
      status.textContent = t("rem.failed", { message: errorText(err) });
    }
    if (dialog.isConnected) timer = setTimeout(refresh, REFRESH_S * 1000);
  };
  const done = () => {
    clearTimeout(timer);
    if (dialog.open) dialog.close();
    dialog.remove();
  };
  close.addEventListener("click", done);
  dialog.addEventListener("close", done);
  document.body.appendChild(dialog);
  dialog.showModal();
  refresh();
}

/**
 * Everyone the message went to: those the server planned notifications for, and the
 * rest of the audience, who had no device or address to reach (read marks only).
 */
function people(recipients, context) {
  const byId = new Map(recipients.map((r) => [r.user, r]));
  const ids = [...new Set([...context.audience(), ...byId.keys()])];
  return ids.map((id) => {
    const known = byId.get(id);
    return {
      id,
      read: Boolean(known && known.read) || context.hasRead(id),
      steps: known ? known.deliveries.slice().sort((a, b) => a.step - b.step || a.due_ts - b.due_ts) : [],
    };
  });
}

function draw(list, found, context) {
  clear(list);
  if (found.length === 0) list.append(h("li", { class: "np-muted" }, t("rem.none")));
  // Who has not read it matters most to the sender: first.
  const ordered = found.filter((p) => !p.read).concat(found.filter((p) => p.read));
  for (const person of ordered) {
    list.append(
      h(
        "li",
        { class: "rem-person", testid: "reminder-recipient", dataset: { user: person.id, read: String(person.read) } },
        h(
          "div",
          { class: "rem-person-head" },
          h("span", { class: "rem-name" }, context.nameOf(person.id)),
          h(
            "span",
            { class: person.read ? "rem-read is-read" : "rem-read", testid: "reminder-read" },
            t(person.read ? "rem.read" : "rem.unread"),
          ),
        ),
        person.steps.length
          ? h("ol", { class: "rem-steps" }, person.steps.map(stepItem))
          : h("p", { class: "np-muted rem-no-steps" }, t("rem.noSteps")),
      ),
    );
  }
}

function stepItem(step) {
  const when = step.done_ts ? fmtTime(step.done_ts) : t("rem.due", { time: fmtTime(step.due_ts) });
  return h(
    "li",
    {
      class: `rem-step state-${step.state}`,
      testid: "reminder-step",
      dataset: { channel: step.channel, step: step.step, state: step.state },
    },
    h("span", { class: "rem-step-name" }, step.step === 0 ? t("rem.first") : t("rem.reminder", { n: step.step })),
    h("span", { class: "rem-channel" }, tOr(`rem.channel.${step.channel}`, step.channel)),
    h("span", { class: `state-chip state-${step.state}` }, tOr(`rem.state.${step.state}`, step.state)),
    h("time", { class: "rem-time", datetime: new Date(step.done_ts || step.due_ts).toISOString() }, when),
    step.attempts > 1 ? h("span", { class: "np-muted" }, t("rem.attempts", { count: step.attempts })) : null,
    step.outcome && step.state !== "sent" ? h("span", { class: "rem-outcome np-muted" }, step.outcome) : null,
  );
}
