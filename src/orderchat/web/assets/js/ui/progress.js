/**
 * An order's progress, one view for both pages: the steps the order has taken, the one
 * it is at now, and the usual path ahead. The states and their names come from the
 * workflow the server sends with the order (workflow.js), never from this module.
 *
 * The audience decides what each step says. Staff (the order panel) follow the status
 * steps with who made each and the note they left. The customer (their page) reads every
 * order event they were shown, with the text written for them, the newest few at first.
 * The view is rebuilt from its arguments; it keeps no state of its own.
 */

import { h } from "../dom.js";
import { addStrings, pickText, t, tOr } from "../i18n.js";
import { fmtDateTime } from "../format.js";
import { pathAhead, stateLabel, workflowOf } from "../workflow.js";
import { userName } from "./util.js";

addStrings({
  "zh-CN": {
    "progress.showAll": "查看全部 {count} 条",
    "progress.showLess": "收起",
    "progress.ev.address_changed": "地址已修改",
    "progress.ev.interception_settled": "拦截结果",
    "progress.ev.delay_notice": "延迟通知",
    "progress.ev.defect_found": "发现问题",
    "progress.ev.defect_resolved": "问题处理方案",
    "progress.ev.refund_recorded": "退款",
    "progress.ev.invoice_issued": "发票已开具",
    "progress.ev.confirmation_proposed": "待您确认",
    "progress.ev.confirmation_decided": "确认结果",
    "progress.ev.other": "订单动态",
  },
  en: {
    "progress.showAll": "Show all {count}",
    "progress.showLess": "Show less",
    "progress.ev.address_changed": "Address changed",
    "progress.ev.interception_settled": "Interception result",
    "progress.ev.delay_notice": "Delay",
    "progress.ev.defect_found": "A problem was found",
    "progress.ev.defect_resolved": "Remedy chosen",
    "progress.ev.refund_recorded": "Refund",
    "progress.ev.invoice_issued": "Invoice issued",
    "progress.ev.confirmation_proposed": "Waiting for your review",
    "progress.ev.confirmation_decided": "Review result",
    "progress.ev.other": "Order update",
  },
});

// The order events that are steps of the workflow; every other event is news about the order.
const STEP_EVENTS = new Set(["order_created", "status_changed"]);

/** What each audience is shown: which events, how many at first, and which details. */
const AUDIENCES = {
  staff: { events: (event) => STEP_EVENTS.has(event), shown: Infinity, by: true, note: true, text: false },
  // The newest steps only at first, so the conversation stays near on a phone.
  customer: { events: () => true, shown: 4, by: false, note: false, text: true },
};

/**
 * One order event as a line of the progress.
 * @param {object} m an `order_event` message
 * @param {object} order
 * @returns {{seq: number, ts: number, event: string, status: string|null, title: string,
 *            text: string, note: string, by: string|null, message: object}}
 */
function entryOf(m, order) {
  const event = m.meta.event;
  const details = m.meta.details || {};
  const workflow = workflowOf(order);
  let status = null;
  if (event === "order_created") status = workflow ? workflow.initial : null;
  else if (event === "status_changed") status = details.to || null;
  const title = status ? stateLabel(order, status) : tOr(`progress.ev.${event}`, t("progress.ev.other"));
  return {
    seq: m.seq,
    ts: m.ts,
    event,
    status,
    title,
    text: pickText(m.meta.text, m.text || ""),
    note: details.note || "",
    by: m.meta.by || m.sender || null,
    message: m,
  };
}

/**
 * The steps taken: the audience's events in order, ending at the order's status. A
 * status the events do not show yet (an event not loaded, a step the customer was not
 * told of) is added from the order itself.
 */
function stepsTaken(audience, order, events) {
  const steps = events
    .filter((m) => m.kind === "order_event" && m.meta && !m.recalled && audience.events(m.meta.event))
    .sort((a, b) => a.seq - b.seq)
    .map((m) => entryOf(m, order));
  const withStatus = steps.filter((s) => s.status);
  const last = withStatus[withStatus.length - 1];
  if (!last || last.status !== order.status) {
    steps.push({
      seq: null,
      ts: order.updated_ts,
      event: null,
      status: order.status,
      title: stateLabel(order, order.status),
      text: "",
      note: "",
      by: null,
      message: null,
    });
  }
  const current = steps.findLastIndex((s) => s.status);
  return { steps, current };
}

/**
 * The progress list of an order.
 * @param {{audience: "staff"|"customer", order: object, events: object[], members?: Map<string, object>,
 *          expanded?: boolean, onToggle?: () => void, extra?: (message: object) => (Node|null)}} spec
 *   `events`: the order conversation's `order_event` messages (others are ignored);
 *   `expanded`/`onToggle`: whether older steps are shown, kept by the caller;
 *   `extra`: something to offer under a step (the customer's choice of remedy).
 * @returns {HTMLOListElement}
 */
export function orderProgress({ audience, order, events, members, expanded = false, onToggle, extra }) {
  const who = AUDIENCES[audience];
  const { steps, current } = stepsTaken(who, order, events);
  const hiddenBefore = !expanded && steps.length > who.shown ? steps.length - who.shown : 0;
  const items = steps.map((s, index) =>
    h(
      "li",
      {
        class: ["ot-item", index === current ? "current" : "done"],
        testid: "order-timeline-item",
        hidden: index < hiddenBefore && index !== current,
        dataset: { status: s.status, event: s.event, seq: s.seq },
      },
      h("span", { class: "ot-dot", "aria-hidden": "true" }),
      h(
        "div",
        { class: "ot-body" },
        h("span", { class: "ot-label" }, s.title),
        who.text && s.text ? h("span", { class: "ot-text" }, s.text) : null,
        h(
          "span",
          { class: "ot-meta" },
          s.ts ? h("time", { datetime: new Date(s.ts).toISOString() }, fmtDateTime(s.ts)) : null,
          who.by && s.by ? ` · ${userName(members, s.by)}` : null,
        ),
        who.note && s.note ? h("span", { class: "ot-note" }, s.note) : null,
        extra && s.message ? extra(s.message) : null,
      ),
    ),
  );
  if (steps.length > who.shown && onToggle) {
    const label = expanded ? t("progress.showLess") : t("progress.showAll", { count: steps.length });
    items.unshift(
      h(
        "li",
        { class: "ot-toggle" },
        h(
          "button",
          {
            class: "btn btn-small",
            type: "button",
            testid: "order-timeline-more",
            "aria-expanded": String(expanded),
            on: { click: onToggle },
          },
          label,
        ),
      ),
    );
  }
  for (const status of pathAhead(workflowOf(order), order.status)) {
    items.push(
      h(
        "li",
        { class: "ot-item upcoming", testid: "order-timeline-next", dataset: { status } },
        h("span", { class: "ot-dot", "aria-hidden": "true" }),
        h("div", { class: "ot-body" }, h("span", { class: "ot-label" }, stateLabel(order, status))),
      ),
    );
  }
  return h("ol", { class: ["order-timeline", `order-timeline-${audience}`], testid: "order-timeline" }, items);
}
