/**
 * How each kind of attachment looks inside a message: picture thumbnails that open the
 * original, a video player, a voice player, and a file card with a download link.
 * Media URLs are the server's (docs/media.md §4); the media cookie authorises them, or,
 * where a page says so, the bearer token (media-src.js: the visitor's page in the widget).
 */

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { fmtBytes, fmtDuration } from "../format.js";
import { icon } from "./icons.js";
import { lightbox } from "./dialogs.js";
import { mediaLink, setMediaUrl } from "./media-src.js";
import "./strings.js";

function ready(att) {
  return att && att.preview && att.preview.status === "ready";
}

function ratio(att) {
  const p = att.preview || {};
  if (p.width && p.height) return `${p.width} / ${p.height}`;
  return null;
}

/**
 * A picture: the thumbnail when it is ready (the original until then), opening the
 * original full size on click.
 * @param {object} att media descriptor
 * @returns {HTMLElement}
 */
export function imageThumb(att) {
  const src = ready(att) && att.preview.url ? att.preview.url : att.url;
  const img = h("img", {
    alt: att.name || "",
    loading: "lazy",
    decoding: "async",
    testid: "msg-image",
    dataset: { media: att.id },
  });
  setMediaUrl(img, "src", src);
  const style = {};
  const r = ratio(att);
  if (r) style.aspectRatio = r;
  const button = h(
    "button",
    {
      type: "button",
      class: "media-img",
      title: t("tl.openOriginal"),
      "aria-label": `${t("tl.openOriginal")} ${att.name || ""}`,
      style,
    },
    img,
  );
  button.addEventListener("click", () => lightbox({ url: att.url, name: att.name }));
  return button;
}

/**
 * A video with the browser's own controls and the server's poster frame.
 * @param {object} att
 * @returns {HTMLElement}
 */
export function videoPlayer(att) {
  const style = {};
  const r = ratio(att);
  if (r) style.aspectRatio = r;
  const video = h("video", {
    controls: true,
    preload: "metadata",
    playsinline: true,
    testid: "msg-video",
    class: "media-video",
    style,
    dataset: { media: att.id },
  });
  setMediaUrl(video, "poster", ready(att) && att.preview.url ? att.preview.url : null);
  setMediaUrl(video, "src", att.url);
  return h(
    "div",
    { class: "media-video-wrap" },
    video,
    mediaLink(
      h(
        "a",
        { class: "media-dl", href: att.url, download: att.name || "" },
        icon("download"),
        h("span", t("common.download")),
      ),
    ),
  );
}

function waveform(peaks) {
  if (!Array.isArray(peaks) || peaks.length === 0) return null;
  const bars = [];
  const step = Math.max(1, Math.floor(peaks.length / 32));
  for (let i = 0; i < peaks.length; i += step) {
    const v = Math.max(...peaks.slice(i, i + step));
    bars.push(h("span", { class: "wave-bar", style: { height: `${Math.max(8, Math.min(100, v))}%` } }));
  }
  return h("div", { class: "wave", "aria-hidden": "true" }, bars);
}

/**
 * A voice message. Browsers that cannot play the recorded format get the server's
 * playback copy (`preview.playback`) when there is one.
 * @param {object} att
 * @returns {HTMLElement}
 */
export function voicePlayer(att) {
  const p = att.preview || {};
  const src = p.playback || att.url;
  const audio = h("audio", {
    controls: true,
    preload: "metadata",
    testid: "msg-voice",
    class: "media-audio",
    dataset: { media: att.id },
  });
  setMediaUrl(audio, "src", src);
  return h(
    "div",
    { class: "voice" },
    h(
      "div",
      { class: "voice-head" },
      icon("mic", "voice-icon"),
      h("span", { class: "voice-label" }, t("tl.voice")),
      p.duration_ms ? h("span", { class: "voice-dur" }, fmtDuration(p.duration_ms)) : null,
      waveform(p.peaks),
    ),
    audio,
  );
}

/**
 * A file: name, size, a page count or thumbnail when known, downloadable in full.
 * @param {object} att
 * @returns {HTMLElement}
 */
export function fileCard(att) {
  const p = att.preview || {};
  const thumb =
    ready(att) && p.url
      ? setMediaUrl(h("img", { class: "file-thumb", alt: "", loading: "lazy" }), "src", p.url)
      : h("span", { class: "file-icon" }, icon("file"));
  const ext = (att.name || "").includes(".") ? att.name.split(".").pop().toUpperCase().slice(0, 5) : "";
  const meta = [fmtBytes(att.size || 0)];
  if (p.pages) meta.push(t("tl.pages", { count: p.pages }));
  if (ext) meta.push(ext);
  const card = h(
    "a",
    {
      class: "file-card",
      href: att.url,
      download: att.name || "",
      testid: "msg-file",
      dataset: { media: att.id },
      title: att.name || "",
    },
    thumb,
    h(
      "span",
      { class: "file-info" },
      h("span", { class: "file-name" }, att.name || att.id),
      h("span", { class: "file-meta" }, meta.join(" · ")),
    ),
    h("span", { class: "file-dl" }, icon("download")),
  );
  return mediaLink(card);
}

/**
 * The right view for one attachment of a message of the given kind.
 * @param {object} att media descriptor
 * @param {string} kind the message kind
 * @returns {HTMLElement}
 */
export function renderAttachment(att, kind) {
  const family = att.kind || kind;
  if (family === "image" && kind !== "file") return imageThumb(att);
  if (family === "video" && kind !== "file") return videoPlayer(att);
  if (family === "voice" && kind !== "file") return voicePlayer(att);
  return fileCard(att);
}
