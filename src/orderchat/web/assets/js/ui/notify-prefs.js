/**
 * "My notifications": a person's own choices, kept by the server for every device
 * (GET/PUT /api/me/notifications, docs/notifications.md) — where mail goes, the
 * language, which occasions may use push or e-mail, quiet hours — and the list of
 * their signed-in devices with which of them take push (GET /api/me/devices).
 * Staff and customers share it; each sees only the occasions that can concern them.
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { fmtDateTime, fmtTime } from "../format.js";
import "./strings-notify.js";

// The occasions that can concern each kind of person (core/notify.py `_reasons`).
const STAFF_OCCASIONS = ["urgent", "mention", "exception", "payment", "role_mention", "direct"];
const CUSTOMER_OCCASIONS = ["order_status", "confirmation", "direct"];
const CHANNELS = ["push", "email"];
const DAY_MIN = 24 * 60;

/**
 * The browser's offset from UTC in minutes, east positive as the server counts it
 * (`getTimezoneOffset` counts the other way).
 * @returns {number}
 */
export function browserOffset() {
  return -new Date().getTimezoneOffset();
}

function toMinutes(hhmm) {
  const [hh, mm] = hhmm.split(":").map(Number);
  return hh * 60 + mm;
}

function toHhmm(minutes) {
  const m = ((minutes % DAY_MIN) + DAY_MIN) % DAY_MIN;
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

/**
 * A stored time of day moved from the offset it was saved with to this browser's, so
 * quiet hours chosen on a device elsewhere read as the same moments here.
 * @param {string} hhmm
 * @param {number} savedOffset
 * @param {number} hereOffset
 * @returns {string}
 */
export function shiftTime(hhmm, savedOffset, hereOffset) {
  return toHhmm(toMinutes(hhmm) - savedOffset + hereOffset);
}

function zoneName(offset) {
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

function occasionLabel(occasion, customer) {
  return t(customer && occasion === "direct" ? "np.occasion.directCustomer" : `np.occasion.${occasion}`);
}

/**
 * A button that opens the panel; for the account menu and the customer's page.
 * @param {{me: object}} options
 * @returns {HTMLButtonElement}
 */
export function notifyPrefsButton({ me }) {
  const button = h(
    "button",
    { type: "button", class: "btn btn-small notify-open", testid: "notify-open" },
    t("np.open"),
  );
  button.addEventListener("click", () => openNotifyPrefs({ me }));
  return button;
}

/**
 * Open the panel as a dialog; it loads the choices and devices itself.
 * @param {{me: object}} options
 * @returns {NotifyPrefs}
 */
export function openNotifyPrefs({ me }) {
  const panel = new NotifyPrefs({ me });
  document.body.appendChild(panel.dialog);
  panel.dialog.showModal();
  panel.load();
  return panel;
}

class NotifyPrefs {
  constructor({ me }) {
    this.customer = Boolean(me && me.kind === "customer");
    this.occasions = this.customer ? CUSTOMER_OCCASIONS : STAFF_OCCASIONS;
    this.saved = null;
    this.status = h("p", { class: "np-status", testid: "notify-status", role: "status" }, t("np.loading"));
    this.error = h("p", { class: "dlg-error", testid: "notify-error", role: "alert", hidden: true });
    this.done = h("p", { class: "np-saved", testid: "notify-saved", role: "status", hidden: true });
    this.fields = h("div", { class: "np-fields", hidden: true });
    this.devices = h("ul", { class: "np-devices", testid: "notify-devices" });
    this.submit = h("button", { type: "submit", class: "btn btn-primary", testid: "notify-save", disabled: true });
    this.submit.textContent = t("np.save");
    const close = h("button", { type: "button", class: "btn", testid: "notify-close" }, t("np.close"));
    const form = h(
      "form",
      { class: "dlg-form", novalidate: true },
      h("header", { class: "dlg-head" }, h("h2", { class: "dlg-title", id: "np-title" }, t("np.title"))),
      h(
        "div",
        { class: "dlg-body" },
        this.status,
        this.fields,
        h(
          "section",
          { class: "np-group", "aria-labelledby": "np-devices-title" },
          h("h3", { class: "np-legend", id: "np-devices-title" }, t("np.devices.legend")),
          this.devices,
        ),
        this.error,
        this.done,
      ),
      h("footer", { class: "dlg-foot" }, close, this.submit),
    );
    this.dialog = h(
      "dialog",
      { class: "dlg dlg-wide np-dialog", testid: "notify-panel", "aria-labelledby": "np-title" },
      form,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    form.addEventListener("input", () => {
      this.done.hidden = true;
    });
    close.addEventListener("click", () => this.close());
    this.dialog.addEventListener("close", () => this.dialog.remove());
  }

  close() {
    if (this.dialog.open) this.dialog.close();
    this.dialog.remove();
  }

  async load() {
    this.loadDevices();
    try {
      this.fill(await api("/api/me/notifications"));
      this.status.hidden = true;
      this.fields.hidden = false;
      this.submit.disabled = false;
    } catch (err) {
      this.status.textContent = t("np.loadFailed", { message: errorText(err) });
    }
  }

  async loadDevices() {
    try {
      const answer = await api("/api/me/devices");
      this.showDevices(answer.devices || []);
    } catch (err) {
      clear(this.devices).append(h("li", { class: "np-muted" }, t("np.devices.failed", { message: errorText(err) })));
    }
  }

  showDevices(devices) {
    clear(this.devices);
    if (devices.length === 0) this.devices.append(h("li", { class: "np-muted" }, t("np.devices.none")));
    for (const d of devices) {
      this.devices.append(
        h(
          "li",
          {
            class: "np-device",
            testid: "notify-device",
            dataset: { push: d.push ? "true" : "false", current: d.current ? "true" : "false" },
          },
          h("span", { class: "np-device-name" }, d.device || "—"),
          d.current ? h("span", { class: "np-tag" }, t("np.devices.current")) : null,
          h(
            "span",
            { class: d.push ? "np-tag np-tag-on" : "np-tag np-tag-off" },
            t(d.push ? "np.devices.push" : "np.devices.noPush"),
          ),
          h("span", { class: "np-muted np-device-since" }, t("np.devices.since", { when: fmtDateTime(d.created_ts) })),
        ),
      );
    }
  }

  /** Draw the form from the server's answer (also after saving, from what it kept). */
  fill(prefs) {
    this.saved = prefs;
    clear(this.fields).append(
      this.emailGroup(prefs),
      this.languageGroup(prefs),
      this.switches(prefs),
      this.quiet(prefs),
    );
  }

  emailGroup(prefs) {
    this.email = h("input", {
      id: "np-email",
      type: "email",
      testid: "notify-email",
      autocomplete: "email",
      maxlength: 200,
      "aria-describedby": "np-email-hint",
    });
    this.email.value = prefs.email || "";
    const goesTo = this.customer
      ? h(
          "p",
          { class: "np-goes-to", testid: "notify-mail-goes-to" },
          prefs.mail_goes_to ? t("np.email.goesTo", { address: prefs.mail_goes_to }) : t("np.email.nowhere"),
        )
      : null;
    return h(
      "fieldset",
      { class: "np-group" },
      h("legend", { class: "np-legend" }, t("np.email.legend")),
      goesTo,
      h(
        "div",
        { class: "dlg-row" },
        h("label", { for: "np-email" }, t(this.customer ? "np.email.own" : "np.email.label")),
        this.email,
        h("p", { class: "hint", id: "np-email-hint" }, t(this.customer ? "np.email.ownHint" : "np.email.hint")),
      ),
    );
  }

  languageGroup(prefs) {
    this.language = h(
      "select",
      { id: "np-language", testid: "notify-language", "aria-describedby": "np-language-hint" },
      [
        ["", t("np.language.default")],
        ["zh-CN", "中文"],
        ["en", "English"],
      ].map(([value, label]) => h("option", { value }, label)),
    );
    this.language.value = prefs.language || "";
    return h(
      "div",
      { class: "dlg-row np-group" },
      h("label", { for: "np-language" }, t("np.language.label")),
      this.language,
      h(
        "p",
        { class: "hint", id: "np-language-hint" },
        t(this.customer ? "np.language.customerHint" : "np.language.staffHint"),
      ),
    );
  }

  switches(prefs) {
    const off = prefs.off || {};
    this.checks = [];
    const rows = this.occasions.map((occasion) => {
      const label = occasionLabel(occasion, this.customer);
      const cells = CHANNELS.map((channel) => {
        const input = h("input", {
          type: "checkbox",
          testid: "notify-switch",
          dataset: { occasion, channel },
          "aria-label": t("np.switches.aria", { occasion: label, channel: t(`np.switches.${channel}`) }),
          checked: !(off[occasion] || []).includes(channel),
        });
        this.checks.push(input);
        return h("td", { class: "np-cell" }, input);
      });
      return h("tr", { testid: "notify-occasion", dataset: { occasion } }, h("th", { scope: "row" }, label), cells);
    });
    return h(
      "fieldset",
      { class: "np-group" },
      h("legend", { class: "np-legend" }, t("np.switches.legend")),
      h(
        "table",
        { class: "np-table" },
        h(
          "thead",
          h(
            "tr",
            h("th", { scope: "col" }, t("np.switches.occasion")),
            CHANNELS.map((c) => h("th", { scope: "col", class: "np-cell" }, t(`np.switches.${c}`))),
          ),
        ),
        h("tbody", rows),
      ),
    );
  }

  quiet(prefs) {
    const here = browserOffset();
    const q = prefs.quiet;
    const time = (id, testid, value) => h("input", { id, type: "time", testid, required: true, value });
    this.quietOn = h("input", { id: "np-quiet-on", type: "checkbox", testid: "notify-quiet", checked: Boolean(q) });
    this.quietStart = time(
      "np-quiet-start",
      "notify-quiet-start",
      q ? shiftTime(q.start, q.utc_offset_min, here) : "22:00",
    );
    this.quietEnd = time("np-quiet-end", "notify-quiet-end", q ? shiftTime(q.end, q.utc_offset_min, here) : "07:00");
    const times = h(
      "div",
      { class: "np-times" },
      h("label", { for: "np-quiet-start" }, t("np.quiet.start")),
      this.quietStart,
      h("label", { for: "np-quiet-end" }, t("np.quiet.end")),
      this.quietEnd,
    );
    const sync = () => {
      this.quietStart.disabled = !this.quietOn.checked;
      this.quietEnd.disabled = !this.quietOn.checked;
    };
    this.quietOn.addEventListener("change", sync);
    sync();
    return h(
      "fieldset",
      { class: "np-group" },
      h("legend", { class: "np-legend" }, t("np.quiet.legend")),
      h("div", { class: "dlg-row dlg-check" }, this.quietOn, h("label", { for: "np-quiet-on" }, t("np.quiet.on"))),
      times,
      h("p", { class: "hint" }, t("np.quiet.zone", { zone: zoneName(here) })),
      h("p", { class: "np-urgent-note", testid: "notify-urgent-note" }, t("np.quiet.urgent")),
    );
  }

  /** The body for PUT: what the form says, keeping switches of occasions not shown here. */
  body() {
    const off = {};
    for (const [occasion, channels] of Object.entries(this.saved.off || {}))
      if (!this.occasions.includes(occasion)) off[occasion] = channels;
    for (const input of this.checks) {
      if (input.checked) continue;
      const { occasion, channel } = input.dataset;
      (off[occasion] ||= []).push(channel);
    }
    const quiet = this.quietOn.checked
      ? { start: this.quietStart.value, end: this.quietEnd.value, utc_offset_min: browserOffset() }
      : null;
    return { email: this.email.value.trim() || null, language: this.language.value || null, off, quiet };
  }

  async save() {
    this.error.hidden = true;
    this.done.hidden = true;
    this.submit.disabled = true;
    this.submit.textContent = t("np.saving");
    try {
      const kept = await api("/api/me/notifications", { method: "PUT", body: this.body() });
      this.fill(kept);
      this.done.textContent = t("np.saved", { time: fmtTime(Date.now()) });
      this.done.hidden = false;
    } catch (err) {
      // The form stays as typed, so the person can correct what the server refused.
      this.error.textContent = t("np.saveFailed", { message: errorText(err) });
      this.error.hidden = false;
    } finally {
      this.submit.disabled = false;
      this.submit.textContent = t("np.save");
    }
  }
}
