/**
 * Group chats: the "new group" dialog (a name and several colleagues at once) and the
 * members panel (rename, add, remove, leave). Who may do what follows the server
 * (docs/conversations.md): any member renames and adds; the owner or an admin removes.
 * The panel redraws from `member` events, so every open browser stays current.
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { api, errorText } from "../api.js";
import { confirmDialog, formDialog } from "./dialogs.js";
import { avatar, isAdmin, roleLabel, userName } from "./util.js";
import "./strings-convs.js";

function colleagues(members, me, skip) {
  return Array.from(members.values())
    .filter((u) => u.id !== me.id && u.kind !== "customer" && !u.placeholder && !skip.has(u.id))
    .sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username, "zh-CN"));
}

/**
 * A list of colleagues with check boxes.
 * @returns {{el: HTMLElement, chosen: () => string[]}}
 */
function peoplePicker(people) {
  const boxes = [];
  const el = h(
    "ul",
    { class: "people-pick", testid: "people-pick", role: "group", "aria-label": t("grp.people") },
    people.map((u) => {
      const box = h("input", { type: "checkbox", value: u.id, testid: "person-check", dataset: { user: u.id } });
      boxes.push(box);
      return h(
        "li",
        h(
          "label",
          { class: "person-row" },
          box,
          avatar(u, u.id, "sm"),
          h("span", { class: "person-name" }, u.display_name || u.username),
          h("span", { class: "person-roles" }, (u.roles || []).map(roleLabel).join(" · ")),
        ),
      );
    }),
  );
  return { el, chosen: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

/**
 * Ask for a name and colleagues, create the group, and return it.
 * @param {{me: object, members: Map<string, object>}} options
 * @returns {Promise<object|null>} the conversation, or null when cancelled
 */
export async function newGroupDialog({ me, members }) {
  const picker = peoplePicker(colleagues(members, me, new Set()));
  const result = await formDialog({
    title: t("grp.newTitle"),
    submitLabel: t("grp.create"),
    fields: [
      { name: "title", label: t("grp.name"), required: true, maxlength: 200, placeholder: t("grp.namePlaceholder") },
      { type: "info", content: h("div", h("p", { class: "dlg-label" }, t("grp.people")), picker.el) },
    ],
    onSubmit: async (v) => {
      const people = picker.chosen();
      if (!people.length) {
        const err = new Error(t("grp.pickSomeone"));
        err.userMessage = t("grp.pickSomeone");
        throw err;
      }
      return api("/api/conversations", { method: "POST", body: { kind: "channel", title: v.title, members: people } });
    },
  });
  return result && result.id ? result : null;
}

/**
 * The members panel of a group, kept current by `update(conv)` from live events.
 */
export class MembersPanel {
  /**
   * @param {{me: object, members: Map<string, object>, conv: object, onLeft: () => void}} options
   */
  constructor({ me, members, conv, onLeft }) {
    this.me = me;
    this.members = members;
    this.conv = conv;
    this.onLeft = onLeft;
    this.error = h("p", { class: "dlg-error", testid: "members-error", role: "alert", hidden: true });
    this.name = h("input", {
      type: "text",
      maxlength: 200,
      testid: "group-name",
      "aria-label": t("grp.rename"),
      value: conv.title || "",
    });
    this.list = h("ul", { class: "member-list", testid: "member-list" });
    this.addArea = h("div", { class: "member-add" });
    const rename = h("form", { class: "group-rename", novalidate: true }, this.name);
    rename.append(h("button", { type: "submit", class: "btn btn-small", testid: "group-rename" }, t("grp.renameSave")));
    rename.addEventListener("submit", (e) => {
      e.preventDefault();
      this.run(() =>
        api(`/api/conversations/${encodeURIComponent(this.conv.id)}`, {
          method: "PATCH",
          body: { title: this.name.value },
        }),
      );
    });
    this.el = h(
      "div",
      { class: "members-panel", testid: "members-panel" },
      h("label", { class: "dlg-label" }, t("grp.rename")),
      rename,
      this.list,
      this.addArea,
      h("p", { class: "hint" }, t("grp.rules")),
      h(
        "button",
        { type: "button", class: "btn btn-danger btn-small", testid: "group-leave", on: { click: () => this.leave() } },
        t("grp.leave"),
      ),
      this.error,
    );
    this.draw();
  }

  async run(call) {
    this.error.hidden = true;
    try {
      return await call();
    } catch (err) {
      this.error.textContent = err && err.userMessage ? err.userMessage : errorText(err);
      this.error.hidden = false;
      return null;
    }
  }

  /** Redraw after a `member` event (or our own change) with the conversation's new state. */
  update(conv) {
    this.conv = { ...this.conv, ...conv };
    if (document.activeElement !== this.name) this.name.value = this.conv.title || "";
    this.draw();
  }

  mayRemove(id) {
    return id !== this.me.id && (this.conv.created_by === this.me.id || isAdmin(this.me));
  }

  draw() {
    clear(this.list);
    const ids = this.conv.members || [];
    this.list.setAttribute("aria-label", t("grp.membersTitle", { count: ids.length }));
    for (const id of ids) {
      const u = this.members.get(id);
      this.list.append(
        h(
          "li",
          { class: "member-row", testid: "member-row", dataset: { user: id } },
          avatar(u, id, "sm"),
          h("span", { class: "person-name" }, userName(this.members, id)),
          id === this.conv.created_by ? h("span", { class: "badge" }, t("grp.creator")) : null,
          this.mayRemove(id)
            ? h(
                "button",
                {
                  type: "button",
                  class: "btn btn-small btn-quiet",
                  testid: "member-remove",
                  on: { click: () => this.remove(id) },
                },
                t("grp.remove"),
              )
            : null,
        ),
      );
    }
    clear(this.addArea);
    const people = colleagues(this.members, this.me, new Set(ids));
    if (!people.length) {
      this.addArea.append(h("p", { class: "hint" }, t("grp.nobodyToAdd")));
      return;
    }
    const picker = peoplePicker(people);
    const add = h(
      "button",
      { type: "button", class: "btn btn-small btn-primary", testid: "member-add" },
      t("grp.addSubmit"),
    );
    add.addEventListener("click", () => {
      const chosen = picker.chosen();
      if (!chosen.length) {
        this.error.textContent = t("grp.pickSomeone");
        this.error.hidden = false;
        return;
      }
      this.run(async () => {
        const conv = await api(`/api/conversations/${encodeURIComponent(this.conv.id)}/members`, {
          method: "POST",
          body: { members: chosen },
        });
        if (conv) this.update(conv);
      });
    });
    this.addArea.append(h("p", { class: "dlg-label" }, t("grp.add")), picker.el, add);
  }

  async remove(id) {
    if (!(await confirmDialog(t("grp.remove"), t("grp.removeConfirm", { name: userName(this.members, id) })))) return;
    await this.run(async () => {
      const conv = await api(
        `/api/conversations/${encodeURIComponent(this.conv.id)}/members/${encodeURIComponent(id)}`,
        {
          method: "DELETE",
        },
      );
      if (conv) this.update(conv);
    });
  }

  async leave() {
    if (!(await confirmDialog(t("grp.leave"), t("grp.leaveConfirm")))) return;
    const done = await this.run(async () => {
      await api(`/api/conversations/${encodeURIComponent(this.conv.id)}/leave`, { method: "POST" });
      return true;
    });
    if (done) this.onLeft();
  }
}
