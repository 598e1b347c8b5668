/**
 * Choosing whom a call rings (docs/calls.md): in an order conversation with a
 * customer, the staff's choice between calling everyone and a staff-only call; and,
 * in a running call, the people of the conversation who can still be added.
 */

import { clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { icon } from "./icons.js";
import { avatar } from "./util.js";
import "./strings-calls.js";
import "./strings.js";

// A party in one of these is in the call or being rung into it: adding them again does nothing.
const PRESENT = new Set(["ringing", "joined", "away"]);

/**
 * The little menu under a call button of a conversation with a customer: everyone
 * (the customer's devices ring too) or staff only (an `internal` call).
 * @param {{button: HTMLElement, media: "audio"|"video", choose: (internal: boolean) => void,
 *          onClose: () => void}} spec the button it opens from, and what a choice starts
 * @returns {{el: HTMLElement, media: string, close: (focusButton?: boolean) => void}}
 */
export function audienceMenu({ button, media, choose, onClose }) {
  let closed = false;
  const close = (focusButton = false) => {
    if (closed) return;
    closed = true;
    document.removeEventListener("pointerdown", onOutside, true);
    button.setAttribute("aria-expanded", "false");
    menu.remove();
    if (focusButton) button.focus();
    onClose();
  };
  const item = (audience, iconName, label, hint) =>
    h(
      "button",
      {
        type: "button",
        class: "call-menu-item",
        role: "menuitem",
        testid: `call-audience-${audience}`,
        dataset: { audience },
        on: {
          click: () => {
            close();
            choose(audience === "staff");
          },
        },
      },
      icon(iconName),
      h(
        "span",
        { class: "call-menu-text" },
        h("span", { class: "call-menu-label" }, label),
        h("span", { class: "call-menu-hint" }, hint),
      ),
    );
  const menu = h(
    "div",
    {
      class: "call-menu",
      role: "menu",
      testid: "call-audience-menu",
      dataset: { media },
      "aria-label": t(media === "video" ? "call.startVideo" : "call.startAudio"),
      on: {
        keydown: (event) => {
          const items = [...menu.querySelectorAll("[role='menuitem']")];
          const at = items.indexOf(document.activeElement);
          if (event.key === "Escape") {
            event.preventDefault();
            close(true);
          } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
            event.preventDefault();
            const step = event.key === "ArrowDown" ? 1 : -1;
            items[(at + step + items.length) % items.length].focus();
          } else if (event.key === "Tab") {
            close();
          }
        },
      },
    },
    item("everyone", "users", t("call.audience.everyone"), t("call.audience.everyoneHint")),
    item("staff", "lock", t("call.audience.staff"), t("call.audience.staffHint")),
  );
  // A press anywhere else closes it; the button that opened it toggles it by itself.
  const onOutside = (event) => {
    if (!menu.contains(event.target) && !button.contains(event.target)) close();
  };
  document.addEventListener("pointerdown", onOutside, true);
  button.setAttribute("aria-expanded", "true");
  button.parentNode.appendChild(menu);
  // Right-aligned under the buttons; on a narrow screen, moved right until it fits.
  const overflow = 8 - menu.getBoundingClientRect().left;
  if (overflow > 0) menu.style.right = `${-overflow}px`;
  menu.querySelector("[role='menuitem']").focus();
  return { el: menu, media, close };
}

/**
 * Whom a running call can still ring: the conversation's members who are neither in it
 * nor ringing. Those who left, missed, declined it or were busy may be rung again; a
 * customer only into a call that is not staff-only, and only by the staff.
 * @param {object} call the call's state
 * @param {string[]} members the conversation's member ids
 * @param {{me: string, staff: boolean, isCustomer: (id: string) => boolean}} who
 * @returns {Array<{user: string, was: string|null}>} `was`: the party's state, if they were in it
 */
export function addableMembers(call, members, { me, staff, isCustomer }) {
  const parties = new Map(((call && call.parties) || []).map((p) => [p.user, p]));
  const noCustomers = Boolean(call && call.internal) || !staff;
  const found = [];
  for (const user of new Set(members || [])) {
    if (typeof user !== "string" || user === me) continue;
    const party = parties.get(user);
    if (party && PRESENT.has(party.state)) continue;
    if (noCustomers && isCustomer(user)) continue;
    found.push({ user, was: party ? party.state : null });
  }
  return found;
}

/**
 * The dialog that rings more people into a running call: one box per person, and the
 * server's refusal (a full call, someone who may not be rung) shown in it.
 * @param {{candidates: Array<{user: string, was: string|null}>, nameOf: (id: string) => string,
 *          userOf: (id: string) => (object|null), ring: (users: string[]) => Promise<void>,
 *          onClose?: () => void}} spec
 *   `ring` rejects with `{userMessage}` to keep the dialog open with that message;
 *   `onClose` is told when the dialog is gone, however it closed
 * @returns {{close: () => void}}
 */
export function addPeopleDialog({ candidates, nameOf, userOf, ring, onClose = () => {} }) {
  const title = t("call.add.title");
  const errorBox = h("p", { class: "dlg-error", testid: "dialog-error", role: "alert", hidden: true });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary", testid: "dialog-submit", disabled: !candidates.length },
    t("call.add.ring"),
  );
  const cancel = h("button", { type: "button", class: "btn", testid: "dialog-cancel" }, t("dlg.cancel"));
  const people = candidates.map(({ user, was }) =>
    h(
      "li",
      null,
      h(
        "label",
        { class: "call-add-person", testid: "call-add-person", dataset: { user, was } },
        h("input", { type: "checkbox", value: user, name: "users" }),
        avatar(userOf(user), user, "sm"),
        h("span", { class: "call-add-name" }, nameOf(user)),
        was ? h("span", { class: "call-add-was" }, t(`call.add.was.${was}`)) : null,
      ),
    ),
  );
  const form = h(
    "form",
    { method: "dialog", class: "dlg-form", novalidate: true },
    h("header", { class: "dlg-head" }, h("h2", { class: "dlg-title" }, title)),
    h(
      "div",
      { class: "dlg-body" },
      h("p", { class: "dlg-intro" }, t(candidates.length ? "call.add.intro" : "call.add.none")),
      candidates.length ? h("ul", { class: "call-add-list", role: "group", "aria-label": title }, people) : null,
      errorBox,
    ),
    h("footer", { class: "dlg-foot" }, cancel, submit),
  );
  const dialog = h("dialog", { class: "dlg call-add-dialog", testid: "call-add-dialog", "aria-label": title }, form);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    onClose();
  };
  const showError = (text) => {
    clear(errorBox).append(text);
    errorBox.hidden = false;
  };
  cancel.addEventListener("click", close);
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    close();
  });
  form.addEventListener("change", () => {
    errorBox.hidden = true;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const users = [...form.querySelectorAll("input[name='users']:checked")].map((input) => input.value);
    if (!users.length) {
      showError(t("call.add.pick"));
      return;
    }
    submit.disabled = true;
    cancel.disabled = true;
    try {
      await ring(users);
      close();
    } catch (err) {
      showError((err && err.userMessage) || String(err));
      submit.disabled = false;
      cancel.disabled = false;
    }
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  const first = form.querySelector("input[name='users']");
  (first || cancel).focus();
  return { close };
}
