/**
 * Modal dialogs on the native <dialog> element: forms for order actions, a confirm,
 * an information box and a picture viewer. Focus trapping and Escape come with it.
 */

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { errorText } from "../api.js";
import { icon } from "./icons.js";
import { mediaLink, setMediaUrl } from "./media-src.js";
import "./strings.js";

function fieldId() {
  fieldId.n = (fieldId.n || 0) + 1;
  return `f-${fieldId.n}`;
}

function control(field) {
  const id = fieldId();
  const common = {
    id,
    name: field.name,
    required: field.required || false,
    "aria-describedby": field.hint ? `${id}-hint` : null,
  };
  let input;
  switch (field.type) {
    case "textarea":
      input = h("textarea", {
        ...common,
        rows: field.rows || 3,
        maxlength: field.maxlength || null,
        placeholder: field.placeholder || null,
      });
      if (field.value !== undefined && field.value !== null) input.value = String(field.value);
      break;
    case "select":
      input = h(
        "select",
        common,
        (field.options || []).map((o) =>
          h("option", { value: o.value, selected: String(field.value) === String(o.value) }, o.label),
        ),
      );
      break;
    case "checkbox":
      input = h("input", { ...common, type: "checkbox", checked: Boolean(field.value) });
      break;
    case "file":
      input = h("input", { ...common, type: "file", multiple: field.multiple || false, accept: field.accept || null });
      break;
    default:
      input = h("input", {
        ...common,
        type: field.type || "text",
        inputmode: field.inputmode || null,
        step: field.step || null,
        min: field.min === undefined ? null : String(field.min),
        maxlength: field.maxlength || null,
        placeholder: field.placeholder || null,
        autocomplete: "off",
      });
      if (field.value !== undefined && field.value !== null) input.value = String(field.value);
  }
  return { id, input };
}

function readValues(form, fields) {
  const values = {};
  for (const field of fields) {
    if (!field.name || field.type === "info") continue;
    const el = form.elements.namedItem(field.name);
    if (!el) continue;
    if (field.type === "checkbox") values[field.name] = el.checked;
    else if (field.type === "file") values[field.name] = Array.from(el.files || []);
    else if (field.type === "number") values[field.name] = el.value === "" ? null : Number(el.value);
    else values[field.name] = el.value.trim();
  }
  return values;
}

/**
 * Ask for a few fields and run the action in the dialog, so a refusal from the server
 * is shown next to the fields the person can correct.
 * @param {{title: string, intro?: string|Node, fields: Array<object>, submitLabel?: string,
 *          onSubmit: (values: object) => Promise<*>, danger?: boolean}} spec
 *   field: {name, label, type (text|textarea|number|select|checkbox|file|date|info), options,
 *           required, value, hint, showIf(values) → boolean, accept, multiple, content (info)}
 * @returns {Promise<*>} what onSubmit returned, or null when cancelled
 */
export function formDialog(spec) {
  return new Promise((resolve) => {
    const rows = [];
    const errorBox = h("p", { class: "dlg-error", testid: "dialog-error", role: "alert", hidden: true });
    const submit = h(
      "button",
      { type: "submit", class: spec.danger ? "btn btn-danger" : "btn btn-primary", testid: "dialog-submit" },
      spec.submitLabel || t("dlg.submit"),
    );
    const cancel = h("button", { type: "button", class: "btn", testid: "dialog-cancel" }, t("dlg.cancel"));
    for (const field of spec.fields) {
      if (field.type === "info") {
        rows.push({ field, row: h("div", { class: "dlg-info" }, field.content) });
        continue;
      }
      const { id, input } = control(field);
      const label = h(
        "label",
        { for: id },
        field.label,
        field.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null,
      );
      const hint = field.hint ? h("p", { class: "hint", id: `${id}-hint` }, field.hint) : null;
      const row =
        field.type === "checkbox"
          ? h("div", { class: "dlg-row dlg-check" }, input, label, hint)
          : h("div", { class: "dlg-row" }, label, input, hint);
      rows.push({ field, row, input });
    }
    const form = h(
      "form",
      { method: "dialog", class: "dlg-form", novalidate: true },
      h("header", { class: "dlg-head" }, h("h2", { class: "dlg-title" }, spec.title)),
      h(
        "div",
        { class: "dlg-body" },
        spec.intro ? h("div", { class: "dlg-intro" }, spec.intro) : null,
        rows.map((r) => r.row),
        errorBox,
      ),
      h("footer", { class: "dlg-foot" }, cancel, submit),
    );
    const dialog = h("dialog", { class: "dlg", testid: "dialog", "aria-label": spec.title }, form);
    let settled = false;
    const finish = (value) => {
      if (settled) return;
      settled = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(value);
    };
    const refresh = () => {
      const values = readValues(form, spec.fields);
      for (const r of rows) {
        const show = r.field.showIf ? Boolean(r.field.showIf(values)) : true;
        r.row.hidden = !show;
        if (r.input) r.input.disabled = !show;
      }
    };
    form.addEventListener("change", refresh);
    form.addEventListener("input", () => {
      errorBox.hidden = true;
    });
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(null);
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = readValues(form, spec.fields);
      for (const r of rows) {
        if (r.row.hidden || !r.field.required || !r.input) continue;
        const v = values[r.field.name];
        const empty = v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0);
        if (empty) {
          errorBox.textContent = t("dlg.requiredField", { field: r.field.label });
          errorBox.hidden = false;
          r.input.focus();
          return;
        }
      }
      for (const r of rows) if (r.row.hidden) delete values[r.field.name];
      submit.disabled = true;
      cancel.disabled = true;
      const label = submit.textContent;
      submit.textContent = t("dlg.working");
      try {
        const result = await spec.onSubmit(values);
        finish(result === undefined ? true : result);
      } catch (err) {
        errorBox.textContent = err && err.userMessage ? err.userMessage : errorText(err);
        errorBox.hidden = false;
        submit.disabled = false;
        cancel.disabled = false;
        submit.textContent = label;
      }
    });
    document.body.appendChild(dialog);
    refresh();
    dialog.showModal();
    const first = rows.find((r) => r.input && !r.row.hidden);
    if (first) first.input.focus();
  });
}

/**
 * Ask a yes/no question before something that cannot be undone.
 * @param {string} title
 * @param {string} text
 * @returns {Promise<boolean>}
 */
export async function confirmDialog(title, text) {
  const result = await formDialog({
    title,
    fields: [{ type: "info", content: h("p", text) }],
    danger: true,
    onSubmit: async () => true,
  });
  return result === true;
}

/**
 * Open a modal that closes from its close button or from a click on its backdrop
 * (any click whose target `isBackdrop` accepts), and leaves the page however it closes.
 * @param {HTMLDialogElement} dialog
 * @param {HTMLElement} closeButton
 * @param {(target: EventTarget) => boolean} isBackdrop
 */
function showDismissable(dialog, closeButton, isBackdrop) {
  const done = () => {
    if (dialog.open) dialog.close();
    dialog.remove();
  };
  closeButton.addEventListener("click", done);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.addEventListener("click", (event) => {
    if (isBackdrop(event.target)) done();
  });
  document.body.appendChild(dialog);
  dialog.showModal();
}

/**
 * Show some content with a single close button (a list of readers, an invitation link).
 * @param {string} title
 * @param {Node|Node[]} content
 * @returns {HTMLDialogElement}
 */
export function infoDialog(title, content) {
  const close = h("button", { type: "button", class: "btn btn-primary", testid: "dialog-cancel" }, t("dlg.close"));
  const dialog = h(
    "dialog",
    { class: "dlg", testid: "dialog", "aria-label": title },
    h(
      "div",
      { class: "dlg-form" },
      h("header", { class: "dlg-head" }, h("h2", { class: "dlg-title" }, title)),
      h("div", { class: "dlg-body" }, content),
      h("footer", { class: "dlg-foot" }, close),
    ),
  );
  showDismissable(dialog, close, (target) => target === dialog);
  return dialog;
}

/**
 * A picture at its original size, over everything, with a link to download it.
 * @param {{url: string, name?: string}} media
 */
export function lightbox(media) {
  const img = setMediaUrl(
    h("img", { alt: media.name || "", class: "lightbox-img", testid: "lightbox-image" }),
    "src",
    media.url,
  );
  const close = h(
    "button",
    { type: "button", class: "icon-btn lightbox-close", "aria-label": t("dlg.close"), testid: "dialog-cancel" },
    icon("close"),
  );
  const download = mediaLink(
    h(
      "a",
      { href: media.url, download: media.name || "", class: "btn btn-ghost-light" },
      icon("download"),
      h("span", t("tl.downloadOriginal")),
    ),
  );
  const dialog = h(
    "dialog",
    { class: "lightbox", testid: "lightbox", "aria-label": media.name || t("tl.openOriginal") },
    h("div", { class: "lightbox-bar" }, h("span", { class: "lightbox-name" }, media.name || ""), download, close),
    h("div", { class: "lightbox-stage" }, img),
  );
  showDismissable(dialog, close, (target) => target === dialog || target.classList.contains("lightbox-stage"));
}
