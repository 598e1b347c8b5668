/**
 * A call's record in the timeline (docs/calls.md, "The record"): the message of kind
 * `call` the server writes when a call ends, drawn from its `meta` as a card — voice
 * or video, how it ended, how long it lasted and who took part. Both pages draw it.
 */

import { h } from "../dom.js";
import { t, tOr } from "../i18n.js";
import { fmtDay, fmtTime } from "../format.js";
import { icon } from "./icons.js";
import "./strings-calls.js";

const OUTCOMES = ["answered", "missed", "declined", "busy", "cancelled"];

/**
 * A length of time as a call shows it: 00:07, 02:31, 1:02:09.
 * @param {number} ms
 * @returns {string}
 */
export function fmtCallDuration(ms) {
  const total = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const seconds = String(total % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${minutes}:${seconds}` : `${minutes}:${seconds}`;
}

/**
 * A call record in one line, in the reader's language, for lists and quotes:
 * "视频通话 · 已接通 · 02:31".
 * @param {object} m the message (kind `call`)
 * @returns {string}
 */
export function callSummary(m) {
  const meta = m.meta && typeof m.meta === "object" ? m.meta : {};
  const media = meta.media === "video" ? "video" : "audio";
  const outcome = OUTCOMES.includes(meta.outcome) ? meta.outcome : "answered";
  const parts = [t(`call.record.title.${media}`), t(`call.outcome.${outcome}`)];
  if (outcome === "answered") parts.push(fmtCallDuration(meta.duration_ms));
  return parts.join(" · ");
}

/**
 * The card of one call record.
 * @param {object} m the message (kind `call`)
 * @param {(id: string) => string} nameOf a user's name as this page shows it
 * @returns {HTMLElement}
 */
export function callRecord(m, nameOf) {
  const meta = m.meta && typeof m.meta === "object" ? m.meta : {};
  const media = meta.media === "video" ? "video" : "audio";
  const outcome = OUTCOMES.includes(meta.outcome) ? meta.outcome : "answered";
  const names = (ids) =>
    (Array.isArray(ids) ? ids : [])
      .filter((id) => typeof id === "string")
      .map(nameOf)
      .join(t("tl.listSep"));
  const joined = names(meta.joined);
  const missed = names(meta.missed);
  const declined = names(meta.declined);
  const duration = outcome === "answered" ? fmtCallDuration(meta.duration_ms) : null;
  return h(
    "div",
    {
      class: ["msg", "msg-call", m.internal ? "msg-internal" : null],
      testid: "msg",
      dataset: { seq: m.seq, id: m.id, kind: m.kind, sender: m.sender },
    },
    h(
      "div",
      {
        class: ["call-record", `call-record-${outcome}`],
        testid: "call-record",
        dataset: {
          call: meta.call || null,
          media,
          outcome,
          durationMs: typeof meta.duration_ms === "number" ? meta.duration_ms : null,
        },
      },
      h("span", { class: "call-record-icon", "aria-hidden": "true" }, icon(media === "video" ? "video" : "phone")),
      h(
        "div",
        { class: "call-record-body" },
        h(
          "div",
          { class: "call-record-head" },
          h("strong", { class: "call-record-title" }, t(`call.record.title.${media}`)),
          h("span", { class: "call-record-outcome", testid: "call-outcome" }, tOr(`call.outcome.${outcome}`, outcome)),
          m.internal ? h("span", { class: "badge badge-internal" }, icon("lock"), t("tl.internal")) : null,
        ),
        duration
          ? h(
              "div",
              { class: "call-record-duration", testid: "call-duration", dataset: { duration } },
              t("call.record.duration", { duration }),
            )
          : null,
        h(
          "div",
          { class: "call-record-people" },
          h("span", { testid: "call-caller" }, t("call.record.caller", { name: nameOf(meta.caller || m.sender) })),
          joined ? h("span", { testid: "call-joined" }, t("call.record.joined", { names: joined })) : null,
          missed ? h("span", { testid: "call-missed" }, t("call.record.missed", { names: missed })) : null,
          declined ? h("span", { testid: "call-declined" }, t("call.record.declined", { names: declined })) : null,
        ),
      ),
      h(
        "time",
        {
          class: "msg-time",
          testid: "msg-time",
          datetime: new Date(m.ts).toISOString(),
          title: `${fmtDay(m.ts)} ${fmtTime(m.ts)}`,
        },
        fmtTime(m.ts),
      ),
    ),
  );
}
