/**
 * The first thing a visitor new to this device sees on `/chat`: a short form (a name,
 * and if they like a phone number, an e-mail address and their question) that starts a
 * consult and signs this device in as them (`POST /api/consults/start`). Also the
 * notice for a "continue on another device" link that no longer works.
 */

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { newRef } from "../ref.js";
import { icon } from "./icons.js";
import "./strings-chat.js";

const MAX_NAME = 100;
const MAX_TEXT = 10000;

let fieldCount = 0;

/** One labelled field; `control` is the input or textarea itself. */
function field(label, control, hint) {
  fieldCount += 1;
  control.id = `chat-f-${fieldCount}`;
  return h(
    "div",
    { class: "chat-field" },
    h("label", { for: control.id }, label),
    control,
    hint ? h("p", { class: "chat-hint" }, hint) : null,
  );
}

/**
 * The start form.
 * @param {{params: {sku: string|null}, body: () => object,
 *          onStarted: (result: object) => Promise<void>}} options
 *   `body()` is what the start sends besides the form's fields (where from, language, device).
 * @returns {HTMLElement}
 */
export function startView({ params, body, onStarted }) {
  // One key per form: a retry after a lost answer is the same start, never a second visitor.
  const key = newRef();
  const name = h("input", {
    type: "text",
    testid: "consult-name",
    name: "name",
    required: true,
    maxlength: String(MAX_NAME),
    autocomplete: "name",
    enterkeyhint: "next",
  });
  const phone = h("input", {
    type: "tel",
    testid: "consult-phone",
    name: "phone",
    maxlength: "40",
    autocomplete: "tel",
    inputmode: "tel",
  });
  const email = h("input", {
    type: "email",
    testid: "consult-email",
    name: "email",
    maxlength: "200",
    autocomplete: "email",
    inputmode: "email",
  });
  const text = h("textarea", {
    testid: "consult-text",
    name: "text",
    rows: "3",
    maxlength: String(MAX_TEXT),
    placeholder: t("ch.start.textPlaceholder"),
  });
  const error = h("p", { class: "chat-error", testid: "consult-start-error", role: "alert", hidden: true });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary chat-start-submit", testid: "consult-start-submit" },
    t("ch.start.submit"),
  );
  const form = h(
    "form",
    { class: "chat-start-form", testid: "consult-start-form", novalidate: true },
    field(t("ch.start.name"), name),
    field(t("ch.start.phone"), phone),
    field(t("ch.start.email"), email),
    field(t("ch.start.text"), text),
    error,
    submit,
    h("p", { class: "chat-privacy" }, t("ch.start.privacy")),
  );
  const fail = (message, focus) => {
    error.textContent = message;
    error.hidden = false;
    if (focus) focus.focus();
  };
  form.addEventListener("input", () => {
    error.hidden = true;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {
      name: name.value.trim(),
      phone: phone.value.trim(),
      email: email.value.trim(),
      text: text.value.trim() ? text.value : "",
    };
    if (!values.name) {
      fail(t("ch.start.nameRequired"), name);
      return;
    }
    if (values.email && !email.checkValidity()) {
      fail(t("ch.start.emailInvalid"), email);
      return;
    }
    const payload = { ...body(), name: values.name };
    for (const k of ["phone", "email", "text"]) if (values[k]) payload[k] = values[k];
    submit.disabled = true;
    submit.textContent = t("ch.start.working");
    let result;
    try {
      result = await api("/api/consults/start", { method: "POST", body: payload, auth: false, idempotencyKey: key });
    } catch (err) {
      submit.disabled = false;
      submit.textContent = t("ch.start.submit");
      fail(errorText(err));
      return;
    }
    await onStarted(result);
  });
  return h(
    "div",
    { class: "chat-start" },
    h(
      "section",
      { class: "c-section chat-start-card" },
      h("h1", null, t("ch.start.title")),
      h("p", { class: "chat-intro" }, t("ch.start.intro")),
      params.sku
        ? h("p", { class: "chat-about", testid: "consult-about" }, t("ch.aboutSku", { sku: params.sku }))
        : null,
      form,
    ),
  );
}

/**
 * A mailed link that was used already or has expired.
 * @param {{onward: () => void}} options `onward` goes on without it
 * @returns {HTMLElement}
 */
export function resumeFailedView({ onward }) {
  return h(
    "div",
    { class: "c-center" },
    h(
      "section",
      { class: "c-notice", testid: "resume-failed", role: "alert" },
      h("div", { class: "c-notice-icon", "aria-hidden": "true" }, icon("linkOff")),
      h("h1", null, t("ch.resume.title")),
      h("p", null, t("ch.resume.text")),
      h(
        "button",
        { type: "button", class: "btn btn-primary", testid: "resume-onward", on: { click: onward } },
        t("ch.resume.onward"),
      ),
    ),
  );
}
