/**
 * Writing into a conversation: text with @ completion, pictures, videos and files
 * (button, drag and drop, paste), voice messages, replies, and for staff the urgent
 * flag and staff-only notes. Files are uploaded first and then sent as a message that
 * names the upload (docs/media.md §3).
 */

import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { errorText } from "../api.js";
import { getSession } from "../session.js";
import { fmtBytes, fmtDuration } from "../format.js";
import { uploadFile } from "../upload.js";
import { VoiceRecorder } from "../recorder.js";
import { icon } from "./icons.js";
import { MentionPopup } from "./mentions.js";
import { isStaff, kindForFile, onLang, previewText, roleLabel, toast, userName } from "./util.js";
import { newRef } from "../ref.js";
import "./strings.js";
import "./strings-webfix.js";

const TYPING_EVERY_MS = 3000;
const MAX_TEXT = 10000;
const drafts = new Map();
const ENTER_KEY = "orderchat.enterSends";
// A message carries at most this many attachments (MAX_ATTACHMENTS in protocol/codec.py).
const MAX_PICTURES = 20;

/** Whether Enter sends on this device (a choice kept in localStorage); off by default. */
function readEnterSends() {
  try {
    return localStorage.getItem(ENTER_KEY) === "1";
  } catch {
    return false;
  }
}

function writeEnterSends(on) {
  try {
    localStorage.setItem(ENTER_KEY, on ? "1" : "0");
  } catch {
    // Only a convenience: the box still works for this page.
  }
}

/**
 * Whether a conversation may hold someone from outside the shop (a customer, a
 * visitor): where a staff-only note means something.
 */
function hasOutsiders(conv) {
  return conv.kind === "order" || conv.kind === "consult";
}

export class Composer {
  /**
   * @param {{conv: object, realtime: object, members: Map<string, object>, roles?: string[],
   *          onSent?: (frame: object, ack: Promise<object>) => void, me?: object,
   *          onError?: (err: object) => void, accept?: string, tools?: HTMLElement[]}} options
   *   `roles` are the role names offered as @mentions (staff only). `onError` hears every
   *   refused send or upload (after its toast); `accept` narrows the files offered.
   *   `tools` are more buttons beside the attach button; one with `data-label-key` is
   *   relabelled from that key when the language changes.
   */
  constructor({ conv, realtime, members, roles, onSent, me, onError, accept, tools }) {
    const session = getSession();
    this.me = me || (session && session.user) || { id: "", roles: [] };
    this.staff = isStaff(this.me);
    this.conv = conv;
    this.realtime = realtime;
    this.members = members instanceof Map ? members : new Map();
    this.roles = Array.isArray(roles) ? roles : [];
    this.onSent = onSent || null;
    this.onError = onError || null;
    this.reply = null;
    this.lastTyping = 0;
    this.recorder = null;
    this.recTimer = null;
    this.dropTargets = [];

    this.input = h("textarea", {
      class: "comp-input",
      testid: "composer-input",
      rows: "1",
      maxlength: String(MAX_TEXT),
      "aria-label": t("comp.placeholderShort"),
      placeholder: t(window.matchMedia("(max-width: 899px)").matches ? "comp.placeholderShort" : "comp.placeholder"),
      "aria-autocomplete": "list",
      enterkeyhint: "send",
    });
    this.input.value = drafts.get(conv.id) || "";
    this.mentions = new MentionPopup({ input: this.input, getOptions: () => this.mentionOptions() });

    this.fileInput = h("input", {
      type: "file",
      multiple: true,
      class: "visually-hidden-input",
      testid: "composer-file",
      tabindex: "-1",
      "aria-hidden": "true",
      accept: accept || null,
    });
    this.attachBtn = h(
      "button",
      {
        type: "button",
        class: "icon-btn",
        title: t("comp.attach"),
        "aria-label": t("comp.attach"),
        testid: "composer-attach",
      },
      icon("clip"),
    );
    this.voiceBtn = h(
      "button",
      {
        type: "button",
        class: "icon-btn",
        testid: "composer-voice",
        title: t("comp.voice"),
        "aria-label": t("comp.voice"),
        "aria-pressed": "false",
      },
      icon("mic"),
    );
    if (!VoiceRecorder.supported()) this.voiceBtn.hidden = true;
    this.sendBtn = h(
      "button",
      { type: "button", class: "btn btn-primary comp-send", testid: "composer-send", "aria-label": t("comp.send") },
      icon("send"),
      h("span", { class: "comp-send-label" }, t("comp.send")),
    );

    this.urgent = h("input", { type: "checkbox", testid: "composer-urgent", class: "toggle-input" });
    this.urgentLabel = h(
      "label",
      { class: "chip-toggle chip-urgent", title: t("comp.urgentHint") },
      this.urgent,
      icon("alert"),
      h("span", t("comp.urgent")),
    );
    this.internal = h("input", { type: "checkbox", testid: "composer-internal", class: "toggle-input" });
    this.internalLabel = h(
      "label",
      { class: "chip-toggle chip-internal", title: t("comp.internalHint") },
      this.internal,
      icon("lock"),
      h("span", t("comp.internal")),
    );
    this.tools = Array.isArray(tools) ? tools : [];
    const showInternal = this.staff && hasOutsiders(conv);
    if (!this.staff) this.urgentLabel.hidden = true;
    if (!showInternal) this.internalLabel.hidden = true;
    // Who will read the next message: in an order chat the customer does, unless the
    // note is staff-only. Said in words, so nobody has to infer it from the chip.
    this.audience = h("p", {
      class: "comp-audience",
      testid: "composer-audience",
      role: "status",
      "aria-live": "polite",
      hidden: !showInternal,
    });
    if (showInternal) {
      this.audience.id = `comp-audience-${conv.id}`;
      this.input.setAttribute("aria-describedby", this.audience.id);
    }

    this.replyBox = h("div", { class: "reply-preview", testid: "reply-preview", hidden: true });
    this.uploads = h("div", { class: "uploads" });
    this.recTime = h("span", { class: "rec-time" }, "0:00");
    this.recCancel = h(
      "button",
      { type: "button", class: "btn btn-small", testid: "composer-voice-cancel", hidden: true },
      icon("close"),
      h("span", t("comp.voiceCancel")),
    );
    this.recBar = h(
      "div",
      { class: "rec-bar", hidden: true, role: "status" },
      h("span", { class: "rec-dot", "aria-hidden": "true" }),
      h("span", { class: "rec-label" }, t("comp.recording", { time: "" })),
      this.recTime,
      this.recCancel,
    );

    this.enterSends = h("input", {
      type: "checkbox",
      testid: "composer-enter-sends",
      checked: readEnterSends(),
    });
    this.enterHint = h("span", { class: "comp-keyhint", testid: "composer-keyhint" });
    this.enterLabel = h(
      "label",
      { class: "comp-enter" },
      this.enterSends,
      h("span", { class: "comp-enter-text" }, t("wf.enterSends")),
    );
    this.pictures = h("div", {
      class: "pic-preview",
      testid: "picture-preview",
      role: "group",
      hidden: true,
    });
    this.picFiles = [];
    this.picUrls = [];

    this.flags = h("div", { class: "comp-flags", hidden: !this.staff }, this.urgentLabel, this.internalLabel);
    this.el = h(
      "div",
      { class: "composer", testid: "composer" },
      this.replyBox,
      this.pictures,
      this.uploads,
      this.recBar,
      this.mentions.el,
      h(
        "div",
        { class: "comp-row" },
        h("div", { class: "comp-tools" }, this.attachBtn, this.voiceBtn, this.tools, this.fileInput),
        h("div", { class: "comp-field" }, this.input),
        this.sendBtn,
      ),
      this.flags,
      this.audience,
      h("div", { class: "comp-options" }, this.enterLabel, this.enterHint),
    );

    this.attachBtn.addEventListener("click", () => this.fileInput.click());
    this.fileInput.addEventListener("change", () => {
      const files = Array.from(this.fileInput.files || []);
      this.fileInput.value = "";
      this.sendFiles(files);
    });
    this.sendBtn.addEventListener("click", () => this.sendText());
    this.voiceBtn.addEventListener("click", () => this.toggleVoice());
    this.recCancel.addEventListener("click", () => this.cancelVoice());
    this.input.addEventListener("keydown", (event) => this.onKey(event));
    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("paste", (event) => this.onPaste(event));
    this.urgent.addEventListener("change", () => this.el.classList.toggle("is-urgent", this.urgent.checked));
    this.internal.addEventListener("change", () => this.showAudience());
    this.enterSends.addEventListener("change", () => {
      writeEnterSends(this.enterSends.checked);
      this.showKeyHint();
    });
    this.showKeyHint();
    this.showAudience();
    this.attachDropTarget(this.el);
    this.offLang = onLang(() => this.relabel());
    this.autosize();
  }

  /** Release the microphone and listeners when the conversation closes. */
  destroy() {
    this.cancelVoice();
    this.closePictures();
    this.offLang();
    for (const off of this.dropTargets) off();
    this.dropTargets = [];
  }

  relabel() {
    this.input.placeholder = t(
      window.matchMedia("(max-width: 899px)").matches ? "comp.placeholderShort" : "comp.placeholder",
    );
    this.input.setAttribute("aria-label", t("comp.placeholderShort"));
    this.attachBtn.title = t("comp.attach");
    this.attachBtn.setAttribute("aria-label", t("comp.attach"));
    this.voiceBtn.title = this.recorder ? t("comp.voiceStop") : t("comp.voice");
    this.voiceBtn.setAttribute("aria-label", this.voiceBtn.title);
    for (const tool of this.tools)
      if (tool.dataset.labelKey) {
        tool.title = t(tool.dataset.labelKey);
        tool.setAttribute("aria-label", tool.title);
      }
    this.sendBtn.setAttribute("aria-label", t("comp.send"));
    this.sendBtn.querySelector(".comp-send-label").textContent = t("comp.send");
    this.urgentLabel.title = t("comp.urgentHint");
    this.urgentLabel.querySelector("span").textContent = t("comp.urgent");
    this.internalLabel.title = t("comp.internalHint");
    this.internalLabel.querySelector("span").textContent = t("comp.internal");
    this.recCancel.querySelector("span").textContent = t("comp.voiceCancel");
    this.enterLabel.querySelector(".comp-enter-text").textContent = t("wf.enterSends");
    this.showKeyHint();
    if (!this.pictures.hidden) this.renderPictures();
    this.showAudience();
    this.setReply(this.reply);
  }

  /** Say who will see the next message, and mark the box while it is a staff-only note. */
  showAudience() {
    const internal = this.internal.checked;
    const key = internal ? "comp.audienceStaff" : "comp.audienceEveryone";
    this.el.classList.toggle("is-internal", internal);
    this.audience.classList.toggle("is-internal", internal);
    // Redraw only on a change, so a screen reader hears it once.
    if (this.audience.dataset.text === t(key)) return;
    this.audience.dataset.audience = internal ? "staff" : "everyone";
    this.audience.dataset.text = t(key);
    clear(this.audience).append(icon(internal ? "lock" : "users"), h("span", null, t(key)));
  }

  /** Put the caret in the text box (after picking a conversation). */
  focus() {
    this.input.focus();
  }

  /**
   * Reply to a message (shown above the box) or stop replying.
   * @param {object|null} message
   */
  setReply(message) {
    this.reply = message && message.seq ? message : null;
    clear(this.replyBox);
    if (!this.reply) {
      this.replyBox.hidden = true;
      return;
    }
    const name =
      this.reply.sender === this.me.id
        ? this.me.display_name || t("user.me")
        : userName(this.members, this.reply.sender);
    this.replyBox.append(
      icon("reply"),
      h("span", { class: "reply-label" }, t("comp.replyTo", { name })),
      h("span", { class: "reply-text" }, previewText(this.reply)),
      h(
        "button",
        {
          type: "button",
          class: "icon-btn",
          "aria-label": t("comp.cancelReply"),
          title: t("comp.cancelReply"),
          on: { click: () => this.setReply(null) },
        },
        icon("close"),
      ),
    );
    this.replyBox.hidden = false;
    this.input.focus();
  }

  /**
   * Also accept files dropped anywhere on this element (the whole conversation view).
   * @param {HTMLElement} target
   */
  attachDropTarget(target) {
    let depth = 0;
    const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
    const enter = (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      target.classList.add("dropping");
    };
    const over = (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    };
    const leave = () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) target.classList.remove("dropping");
    };
    const drop = (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.stopPropagation();
      depth = 0;
      target.classList.remove("dropping");
      this.sendFiles(Array.from(event.dataTransfer.files || []));
    };
    target.addEventListener("dragenter", enter);
    target.addEventListener("dragover", over);
    target.addEventListener("dragleave", leave);
    target.addEventListener("drop", drop);
    this.dropTargets.push(() => {
      target.removeEventListener("dragenter", enter);
      target.removeEventListener("dragover", over);
      target.removeEventListener("dragleave", leave);
      target.removeEventListener("drop", drop);
      target.classList.remove("dropping");
    });
  }

  mentionOptions() {
    const out = [];
    for (const id of this.conv.members || []) {
      if (id === this.me.id) continue;
      const user = this.members.get(id);
      if (!user) continue;
      const name = user.display_name || user.username || id;
      const roles = (user.roles || []).map(roleLabel);
      out.push({
        type: "user",
        token: id,
        user,
        insert: name,
        label: name,
        sub:
          user.kind === "customer"
            ? t("user.customer")
            : [user.username ? `@${user.username}` : "", roles.join(" ")].filter(Boolean).join(" · "),
        search: [name, user.username || "", ...roles, ...(user.roles || [])],
      });
    }
    if (!this.staff) return out;
    const present = new Set();
    for (const id of this.conv.members || []) for (const r of (this.members.get(id) || {}).roles || []) present.add(r);
    const roles = this.roles.filter((r) => present.size === 0 || present.has(r));
    for (const role of roles) {
      out.push({
        type: "role",
        token: `@${role}`,
        insert: role,
        label: roleLabel(role),
        sub: `@${role}`,
        search: [role, roleLabel(role)],
      });
    }
    out.push({
      type: "all",
      token: "@all",
      insert: "all",
      label: t("role.all"),
      sub: t("comp.mentionAll"),
      search: ["all", "everyone", "所有人", "全体成员", t("role.all")],
    });
    return out;
  }

  /** Say which keys send and which make a new line, as the box is now set. */
  showKeyHint() {
    const on = this.enterSends.checked;
    const mac = /Mac|iPhone|iPad/.test(navigator.platform || "");
    this.enterHint.textContent = t(on ? "wf.hintEnterSends" : mac ? "wf.hintCmdEnter" : "wf.hintCtrlEnter");
    this.input.setAttribute("enterkeyhint", on ? "send" : "enter");
    if (!window.matchMedia("(max-width: 899px)").matches)
      this.input.placeholder = t(on ? "wf.placeholderEnter" : mac ? "wf.placeholderCmd" : "wf.placeholderCtrl");
  }

  onKey(event) {
    if (this.mentions.handleKey(event)) return;
    if (event.key === "Enter") {
      // The Enter that confirms an input method's candidate (Chinese, Japanese…) is
      // the input method's, never a send.
      if (event.isComposing || event.keyCode === 229) return;
      const modified = event.ctrlKey || event.metaKey;
      const sends = this.enterSends.checked ? !event.shiftKey : modified;
      if (sends) {
        event.preventDefault();
        this.sendText();
      }
    } else if (event.key === "Escape" && this.reply) {
      this.setReply(null);
    }
  }

  onInput() {
    drafts.set(this.conv.id, this.input.value);
    this.autosize();
    const now = Date.now();
    if (this.input.value.trim() && now - this.lastTyping > TYPING_EVERY_MS && this.realtime) {
      this.lastTyping = now;
      Promise.resolve(this.realtime.op({ op: "typing", conv: this.conv.id })).catch(() => {});
    }
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 180)}px`;
  }

  onPaste(event) {
    const files = Array.from((event.clipboardData && event.clipboardData.files) || []);
    if (files.length === 0) return;
    event.preventDefault();
    this.sendFiles(files);
  }

  flagsFor(frame) {
    if (this.staff && this.urgent.checked) frame.urgent = true;
    if (this.staff && hasOutsiders(this.conv) && this.internal.checked) frame.internal = true;
    return frame;
  }

  /** After every send: the next message is a plain one to everyone again. */
  resetFlags() {
    this.urgent.checked = false;
    this.el.classList.remove("is-urgent");
    this.internal.checked = false;
    this.showAudience();
  }

  dispatch(frame) {
    const ack = this.realtime.send(frame);
    ack.catch((err) => {
      const message = errorText(err);
      if (err && err.code === "cancelled") return;
      toast(t("comp.sendFailed", { message }), "error");
      if (this.onError) this.onError(err);
    });
    if (this.onSent) this.onSent(frame, ack);
    return ack;
  }

  /** Send what is in the box as a text message. */
  sendText() {
    const text = this.input.value;
    if (!text.trim()) {
      this.input.focus();
      return;
    }
    if (text.length > MAX_TEXT) {
      toast(t("comp.tooLong"), "error");
      return;
    }
    const frame = this.flagsFor({
      op: "send",
      ref: newRef(),
      conv: this.conv.id,
      kind: "text",
      text,
      attachments: [],
      mentions: this.mentions.tokensFor(text),
      reply_to: this.reply ? this.reply.seq : null,
    });
    this.input.value = "";
    drafts.delete(this.conv.id);
    this.mentions.reset();
    this.setReply(null);
    this.resetFlags();
    this.autosize();
    this.input.focus();
    this.dispatch(frame);
  }

  /**
   * Upload files and send each as its own message (picture, video, voice or file).
   * @param {File[]} files
   */
  sendFiles(files) {
    const pictures = [];
    for (const file of files) {
      if (!file || file.size === 0) continue;
      if (kindForFile(file) === "image") pictures.push(file);
      else this.uploadAndSend(file, kindForFile(file));
    }
    if (pictures.length) this.previewPictures(pictures);
  }

  // ---- pictures: look before sending ----------------------------------------------

  /**
   * Show chosen pictures before they go: thumbnails, a caption, send or cancel. More
   * pictures chosen meanwhile join the same message.
   * @param {File[]} files
   */
  previewPictures(files) {
    const room = MAX_PICTURES - this.picFiles.length;
    if (files.length > room) toast(t("wf.tooManyPictures", { count: MAX_PICTURES }), "error");
    for (const file of files.slice(0, Math.max(0, room))) {
      this.picFiles.push(file);
      this.picUrls.push(URL.createObjectURL(file));
    }
    if (!this.picFiles.length) return;
    this.renderPictures();
    this.pictures.hidden = false;
    this.el.classList.add("has-pictures");
    if (this.picCaption) this.picCaption.focus();
  }

  renderPictures() {
    const caption = this.picCaption ? this.picCaption.value : "";
    this.picCaption = h("textarea", {
      class: "pic-caption",
      testid: "picture-caption",
      rows: "2",
      maxlength: String(MAX_TEXT),
      placeholder: t("wf.captionPlaceholder"),
      "aria-label": t("wf.caption"),
    });
    this.picCaption.value = caption;
    this.picCaption.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.closePictures();
        this.input.focus();
        return;
      }
      if (event.key !== "Enter" || event.isComposing || event.keyCode === 229) return;
      const modified = event.ctrlKey || event.metaKey;
      if (this.enterSends.checked ? !event.shiftKey : modified) {
        event.preventDefault();
        this.sendPictures();
      }
    });
    const thumbs = this.picFiles.map((file, i) =>
      h(
        "figure",
        { class: "pic-thumb", testid: "picture-thumb" },
        h("img", { src: this.picUrls[i], alt: file.name }),
        h(
          "button",
          {
            type: "button",
            class: "icon-btn pic-remove",
            "aria-label": t("wf.removePicture", { name: file.name }),
            title: t("wf.removePicture", { name: file.name }),
            on: { click: () => this.removePicture(i) },
          },
          icon("close"),
        ),
      ),
    );
    this.pictures.setAttribute("aria-label", t("wf.picturesTitle", { count: this.picFiles.length }));
    clear(this.pictures).append(
      h("p", { class: "pic-title" }, t("wf.picturesTitle", { count: this.picFiles.length })),
      h("div", { class: "pic-thumbs" }, ...thumbs),
      this.picCaption,
      h(
        "div",
        { class: "pic-actions" },
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small",
            testid: "picture-cancel",
            on: {
              click: () => {
                this.closePictures();
                this.input.focus();
              },
            },
          },
          t("wf.cancelPictures"),
        ),
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small btn-primary",
            testid: "picture-send",
            on: { click: () => this.sendPictures() },
          },
          icon("send"),
          h("span", null, t("wf.sendPictures", { count: this.picFiles.length })),
        ),
      ),
    );
  }

  removePicture(index) {
    URL.revokeObjectURL(this.picUrls[index]);
    this.picFiles.splice(index, 1);
    this.picUrls.splice(index, 1);
    if (this.picFiles.length) this.renderPictures();
    else this.closePictures();
  }

  /** Put the preview away; nothing is uploaded or sent. */
  closePictures() {
    for (const url of this.picUrls) URL.revokeObjectURL(url);
    this.picFiles = [];
    this.picUrls = [];
    this.picCaption = null;
    if (!this.pictures) return;
    clear(this.pictures);
    this.pictures.hidden = true;
    this.el.classList.remove("has-pictures");
  }

  /** Upload the previewed pictures and send them as one message carrying the caption. */
  async sendPictures() {
    const files = this.picFiles.slice();
    const caption = this.picCaption ? this.picCaption.value : "";
    if (!files.length) return;
    if (caption.length > MAX_TEXT) {
      toast(t("comp.tooLong"), "error");
      return;
    }
    this.closePictures();
    this.input.focus();
    const reply = this.reply;
    const flags = this.flagsFor({});
    this.resetFlags();
    const ids = [];
    for (const file of files) {
      const id = await this.uploadWithProgress(file, "image");
      if (id === null) return;
      ids.push(id);
    }
    const frame = {
      op: "send",
      ref: newRef(),
      conv: this.conv.id,
      kind: "image",
      text: caption.trim() ? caption : "",
      attachments: ids.map((id) => ({ id })),
      mentions: caption.trim() ? this.mentions.tokensFor(caption) : [],
      reply_to: reply ? reply.seq : null,
      ...flags,
    };
    if (reply && this.reply === reply) this.setReply(null);
    this.dispatch(frame);
  }

  async uploadAndSend(file, kind) {
    const reply = this.reply;
    // The flags belong to this file from the moment it is chosen; the switches are
    // free for the next message at once, not only when the upload ends.
    const flags = this.flagsFor({});
    this.resetFlags();
    const id = await this.uploadWithProgress(file, kind);
    if (id === null) return;
    const frame = {
      op: "send",
      ref: newRef(),
      conv: this.conv.id,
      kind,
      text: "",
      attachments: [{ id }],
      mentions: [],
      reply_to: reply ? reply.seq : null,
      ...flags,
    };
    if (reply && this.reply === reply) this.setReply(null);
    this.dispatch(frame);
  }

  /**
   * Upload one file with a progress row that can cancel it.
   * @returns {Promise<string|null>} the upload id, or null when cancelled or failed (said in a toast)
   */
  async uploadWithProgress(file, kind) {
    const controller = new AbortController();
    const bar = h("progress", {
      class: "upload-bar",
      testid: "upload-progress",
      max: "100",
      value: "0",
      "aria-label": t("comp.uploading", { name: file.name }),
    });
    const pct = h("span", { class: "upload-pct" }, "0%");
    const row = h(
      "div",
      { class: "upload-row", dataset: { name: file.name } },
      icon(kind === "image" ? "image" : kind === "video" ? "video" : kind === "voice" ? "mic" : "file"),
      h("span", { class: "upload-name" }, file.name),
      h("span", { class: "upload-size" }, fmtBytes(file.size)),
      bar,
      pct,
      h(
        "button",
        {
          type: "button",
          class: "icon-btn",
          "aria-label": t("comp.cancelUpload"),
          title: t("comp.cancelUpload"),
          on: { click: () => controller.abort() },
        },
        icon("close"),
      ),
    );
    this.uploads.appendChild(row);
    try {
      const id = await uploadFile(file, this.conv.id, {
        signal: controller.signal,
        onProgress: (loaded, total) => {
          const p = total ? Math.round((loaded / total) * 100) : 0;
          bar.value = p;
          pct.textContent = `${p}%`;
        },
      });
      row.remove();
      return id;
    } catch (err) {
      row.remove();
      if (err && err.name === "AbortError") return null;
      toast(t("upload.failed", { message: errorText(err) }), "error");
      if (this.onError) this.onError(err);
      return null;
    }
  }

  // ---- voice ---------------------------------------------------------------------

  async toggleVoice() {
    if (this.recorder) {
      await this.finishVoice();
      return;
    }
    const recorder = new VoiceRecorder();
    this.recorder = recorder;
    this.setRecording(true);
    try {
      await recorder.start();
    } catch (err) {
      this.recorder = null;
      this.setRecording(false);
      const denied =
        err && (err.name === "NotAllowedError" || err.name === "NotFoundError" || err.name === "SecurityError");
      toast(t(denied ? "recorder.denied" : "recorder.unsupported"), "error");
      return;
    }
    if (this.recorder !== recorder) {
      recorder.cancel();
      return;
    }
    this.recTimer = setInterval(() => {
      this.recTime.textContent = fmtDuration(recorder.elapsedMs);
    }, 250);
  }

  async finishVoice() {
    const recorder = this.recorder;
    this.recorder = null;
    this.setRecording(false);
    if (!recorder) return;
    try {
      const file = await recorder.stop();
      this.uploadAndSend(file, "voice");
    } catch (err) {
      console.warn("recording not sent", err);
    }
  }

  /** Throw the current recording away. */
  cancelVoice() {
    const recorder = this.recorder;
    this.recorder = null;
    if (recorder) recorder.cancel();
    this.setRecording(false);
  }

  setRecording(on) {
    clearInterval(this.recTimer);
    this.recTimer = null;
    this.recTime.textContent = "0:00";
    this.recBar.hidden = !on;
    this.recCancel.hidden = !on;
    this.el.classList.toggle("recording", on);
    this.voiceBtn.setAttribute("aria-pressed", on ? "true" : "false");
    clear(this.voiceBtn).append(icon(on ? "stop" : "mic"));
    this.voiceBtn.title = on ? t("comp.voiceStop") : t("comp.voice");
    this.voiceBtn.setAttribute("aria-label", this.voiceBtn.title);
    this.recBar.querySelector(".rec-label").textContent = t("comp.recording", { time: "" }).trim();
  }
}
