/**
 * The "notifications on this device" switch, with a line saying what it is doing or
 * why it could not. It shows what the browser holds, not what was last clicked: a
 * failure always leaves it off (or on, when turning off failed) with the reason.
 */

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { errorText } from "../api.js";
import { PushError, disablePush, enablePush, pushBlocker, pushIsOn, renewPush } from "../pwa.js";
import "./strings-pwa.js";

export class PushSwitch {
  /** @param {{userId: string}} options whose subscription this is */
  constructor({ userId }) {
    this.userId = userId;
    this.message = { key: "pwa.push.off", params: null };
    this.input = h("input", {
      type: "checkbox",
      role: "switch",
      class: "push-switch-input",
      testid: "push-switch",
      on: { change: () => this.toggle() },
    });
    this.label = h("span", { class: "push-switch-label" });
    this.status = h("p", { class: "push-status", testid: "push-status", "aria-live": "polite" });
    this.el = h(
      "div",
      { class: "push-switch", dataset: { state: "off" } },
      h("label", { class: "push-switch-row" }, this.input, this.label),
      this.status,
    );
    this.relabel();
    this.refresh();
  }

  /** Read the state from the browser again. */
  async refresh() {
    const blocker = pushBlocker();
    if (blocker) {
      this.show("off", `pwa.push.${blocker}`);
      return;
    }
    let on = false;
    try {
      // A subscription the push service renewed while the app was closed reaches the server now.
      await renewPush(this.userId);
      on = await pushIsOn(this.userId);
    } catch (err) {
      console.warn("the push state was not read", err);
    }
    if (this.el.dataset.state === "busy") return;
    if (on) this.show("on", "pwa.push.on");
    else this.show("off", Notification.permission === "denied" ? "pwa.push.denied" : "pwa.push.off");
  }

  async toggle() {
    const turnOn = this.input.checked;
    this.input.disabled = true;
    this.show("busy", turnOn ? "pwa.push.turningOn" : "pwa.push.turningOff");
    try {
      if (turnOn) await enablePush(this.userId);
      else await disablePush(this.userId);
      this.show(turnOn ? "on" : "off", turnOn ? "pwa.push.on" : "pwa.push.off");
    } catch (err) {
      console.warn("notifications were not switched", err);
      const stillOn = err instanceof PushError && err.code === "offLocalFailed";
      this.show(stillOn ? "on" : "off", ...failure(err), true);
    } finally {
      this.input.disabled = false;
    }
  }

  /** Redraw the words in the current language. */
  relabel() {
    this.label.textContent = t("pwa.push.label");
    this.status.textContent = t(this.message.key, this.message.params || undefined);
  }

  show(state, key, params = null, failed = false) {
    this.message = { key, params };
    this.el.dataset.state = state;
    this.el.classList.toggle("push-failed", failed);
    // While busy it shows where it is going, as clicked.
    if (state !== "busy") this.input.checked = state === "on";
    this.relabel();
  }
}

/**
 * The text of a failure and its parameters.
 * @param {unknown} err
 * @returns {[string, object|null]}
 */
function failure(err) {
  if (!(err instanceof PushError)) return ["pwa.push.failed", { message: errorText(err) }];
  if (["failed", "offFailed", "offLocalFailed"].includes(err.code))
    return [`pwa.push.${err.code}`, { message: reason(err.cause) }];
  return [`pwa.push.${err.code}`, null];
}

function reason(cause) {
  // A browser's own failure (a DOMException) says more than a generic sentence.
  if (cause && cause.name && cause.name !== "ApiError" && cause.message) return cause.message;
  return errorText(cause);
}
