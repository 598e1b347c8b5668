/**
 * The rules view (#/rules), read-only: the order workflows, event routing, the
 * notification policy and the consult rules (`consults.toml`, docs/consults.md §2),
 * each with the file it comes from and whether that file is valid now (GET /api/rules
 * reads every file again).
 */

import { h, clear } from "../dom.js";
import { pickText, t, tOr } from "../i18n.js";
import { api, errorText } from "../api.js";
import { onLang, roleLabel } from "./util.js";
import { pageHeader } from "./catalogue.js";
import "./strings-catalogue.js";
import "./strings-consults.js";

export class RulesView {
  constructor() {
    this.data = null;
    this.error = null;
    this.el = h("section", { class: "page rules", testid: "rules" });
    this.offLang = onLang(() => this.render());
    this.render();
    this.load();
  }

  destroy() {
    this.offLang();
    this.gone = true;
  }

  async load() {
    try {
      this.data = await api("/api/rules");
      this.error = null;
    } catch (err) {
      this.error = err;
    }
    if (!this.gone) this.render();
  }

  render() {
    const body = [];
    if (this.error) {
      body.push(
        h("p", { class: "op-error", role: "alert" }, t("rules.loadFailed", { message: errorText(this.error) })),
      );
    } else if (!this.data) {
      body.push(h("p", { class: "op-loading" }, t("common.loading")));
    } else {
      const d = this.data;
      body.push(
        h("p", { class: "page-note" }, t("rules.intro", { dir: d.shop_dir })),
        section(t("rules.workflows"), "rules-workflows", d.workflows.map(workflowCard)),
        section(t("rules.routing"), "rules-routing", [routingCard(d.routing)]),
        section(t("rules.notifications"), "rules-notifications", [notifyCard(d.notifications)]),
        section(t("rules.consult"), "rules-consult", [
          d.consult && d.consult.configured ? consultCard(d.consult) : notConfigured(),
        ]),
      );
    }
    clear(this.el).append(pageHeader(t("rules.title")), h("div", { class: "page-body" }, body));
  }
}

function section(title, testid, children) {
  return h("section", { class: "rules-section", testid }, h("h3", { class: "rules-heading" }, title), children);
}

function notConfigured() {
  return h("p", { class: "rules-none", testid: "rules-none" }, t("rules.noneYet"));
}

function sourceLine(source) {
  return h(
    "p",
    { class: "rules-source" },
    h(
      "span",
      { class: "cat-badge cat-badge-muted", testid: "rules-origin" },
      source.origin === "shop" ? t("rules.shop") : t("rules.builtIn"),
    ),
    " ",
    h("span", { class: "sr-only" }, t("rules.file")),
    h("code", { class: "rules-path", testid: "rules-path" }, source.path),
  );
}

function validity(valid, errors) {
  return [
    h(
      "span",
      {
        class: valid ? "cat-badge cat-badge-ok" : "cat-badge cat-badge-bad",
        testid: "rules-valid",
        dataset: { valid },
      },
      valid ? t("rules.valid") : t("rules.invalid"),
    ),
    errors.length
      ? h(
          "ul",
          { class: "rules-errors", testid: "rules-errors" },
          errors.map((e) => h("li", e)),
        )
      : null,
  ];
}

function roles(list) {
  return list.map(roleLabel).join("、") || "—";
}

function workflowCard(file) {
  const w = file.workflow;
  const title = w ? `${pickText(w.title, w.name)} (${w.name})` : file.source.path.split("/").pop();
  return h(
    "article",
    { class: "rules-card", testid: "rules-workflow", dataset: { name: w ? w.name : "", path: file.source.path } },
    h(
      "header",
      { class: "rules-card-head" },
      h("h4", { class: "rules-card-title" }, title),
      ...validity(file.valid, file.errors),
      h(
        "span",
        { class: file.running ? "cat-badge cat-badge-ok" : "cat-badge cat-badge-muted", testid: "rules-running" },
        file.running ? t("rules.running") : t("rules.notRunning"),
      ),
    ),
    sourceLine(file.source),
    file.overridden_by ? h("p", { class: "hint" }, t("rules.overridden", { path: file.overridden_by })) : null,
    w ? workflowDetails(w) : null,
  );
}

function workflowDetails(w) {
  const label = (state) => {
    const found = w.states.find((s) => s.name === state);
    return found ? pickText(found.label, state) : state;
  };
  return h(
    "details",
    { class: "rules-details" },
    h("summary", t("rules.states", { count: w.states.length, transitions: w.transitions.length })),
    rulesTable(
      ["rules.col.from", "rules.col.to", "rules.col.roles", "rules.col.notify"],
      w.transitions.map((tr) =>
        h(
          "tr",
          h("td", tr.from.map(label).join("、")),
          h("td", label(tr.to)),
          h("td", roles(tr.roles)),
          h("td", roles(tr.notify)),
        ),
      ),
    ),
  );
}

function routingCard(routing) {
  return h(
    "article",
    { class: "rules-card", testid: "rules-routing-file", dataset: { path: routing.source.path } },
    h(
      "header",
      { class: "rules-card-head" },
      h("h4", { class: "rules-card-title" }, t("rules.routing")),
      ...validity(routing.valid, routing.errors),
    ),
    sourceLine(routing.source),
    rulesTable(
      ["rules.col.event", "rules.col.notify", "rules.col.customer", "rules.col.text"],
      routing.routes.map((r) =>
        h(
          "tr",
          { testid: "rules-route" },
          h("td", h("code", r.event)),
          h("td", roles(r.roles)),
          h("td", r.customer ? t("rules.yes") : t("rules.no")),
          h("td", pickText(r.text, "")),
        ),
      ),
    ),
  );
}

/** Seconds as people read them: "at once", "30 s", "10 min", or "never". */
function delay(seconds) {
  if (seconds === null || seconds === undefined) return t("rules.never");
  if (seconds === 0) return t("rules.atOnce");
  if (seconds % 60 === 0) return t("rules.minutes", { n: seconds / 60 });
  return t("rules.seconds", { n: seconds });
}

function notifyCard(notify) {
  const ladder = notify.ladder;
  return h(
    "article",
    { class: "rules-card", testid: "rules-notify-file", dataset: { path: notify.source.path } },
    h(
      "header",
      { class: "rules-card-head" },
      h("h4", { class: "rules-card-title" }, t("rules.notifications")),
      ...validity(notify.valid, notify.errors),
    ),
    sourceLine(notify.source),
    rulesTable(
      ["rules.col.occasion", "rules.col.push", "rules.col.email"],
      notify.occasions.map((o) =>
        h(
          "tr",
          { testid: "rules-occasion", dataset: { occasion: o.occasion } },
          h("td", t(`rules.occasion.${o.occasion}`)),
          h("td", delay(o.push_after_s)),
          h("td", delay(o.email_after_s)),
        ),
      ),
    ),
    ladder
      ? h(
          "p",
          { class: "hint", testid: "rules-ladder" },
          t("rules.ladder", {
            after: delay(ladder.escalate_after_s),
            every: delay(ladder.every_s),
            times: ladder.reminders,
          }),
        )
      : null,
  );
}

/** A length of time in whole minutes when it is one, else in seconds. */
function seconds(n) {
  return n % 60 === 0 ? t("cs.dur.minutes", { n: n / 60 }) : t("cs.dur.seconds", { n });
}

/** The consult rules: the queues in order, who serves each and how, the clocks and the hours. */
function consultCard(consult) {
  const facts = [];
  if (typeof consult.first_response_s === "number")
    facts.push(t("cs.rules.firstResponse", { time: seconds(consult.first_response_s) }));
  if (typeof consult.max_open_per_agent === "number")
    facts.push(t("cs.rules.capacity", { n: consult.max_open_per_agent }));
  if (consult.timezone) facts.push(t("cs.rules.timezone", { tz: consult.timezone }));
  const hours = consult.hours;
  if (consult.valid)
    facts.push(
      hours
        ? t("cs.rules.hours", {
            days: (hours.days || []).map((d) => t(`cs.rules.day.${d}`)).join(t("tl.listSep")),
            open: hours.open,
            close: hours.close,
          })
        : t("cs.rules.alwaysOpen"),
    );
  const queues = consult.queues || [];
  return h(
    "article",
    { class: "rules-card", testid: "rules-consult-file", dataset: { path: consult.source.path } },
    h(
      "header",
      { class: "rules-card-head" },
      h("h4", { class: "rules-card-title" }, t("rules.consult")),
      ...validity(consult.valid, consult.errors || []),
    ),
    sourceLine(consult.source),
    facts.length
      ? h(
          "ul",
          { class: "rules-facts", testid: "rules-consult-facts" },
          facts.map((f) => h("li", f)),
        )
      : null,
    hours && hours.away ? h("p", { class: "hint", testid: "rules-consult-away" }, pickText(hours.away, "")) : null,
    queues.length
      ? rulesTable(
          ["cs.rules.col.queue", "cs.rules.col.languages", "cs.rules.col.roles", "cs.rules.col.strategy"],
          queues.map((q) =>
            h(
              "tr",
              { testid: "rules-queue", dataset: { queue: q.name } },
              h("td", h("code", q.name)),
              h(
                "td",
                q.languages && q.languages.length
                  ? q.languages.map((l) => tOr(`cs.lang.${l}`, l)).join(t("tl.listSep"))
                  : t("cs.rules.anyLanguage"),
              ),
              h("td", roles(q.roles || [])),
              h("td", tOr(`cs.rules.strategy.${q.strategy}`, q.strategy)),
            ),
          ),
        )
      : null,
  );
}

/** A read-only table: its column headings (string keys) over the given rows. */
function rulesTable(columns, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "rules-table" },
      h("thead", h("tr", ...columns.map((key) => h("th", { scope: "col" }, t(key))))),
      h("tbody", rows),
    ),
  );
}
