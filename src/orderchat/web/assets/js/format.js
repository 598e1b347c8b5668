/**
 * Times, money, sizes and durations written the way the reader's language writes them.
 * Every function reads the language at call time, so redrawing after `langchange` is enough.
 */

import { getLang, t } from "./i18n.js";

function locale() {
  return getLang() === "zh-CN" ? "zh-CN" : "en-GB";
}

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

/**
 * The clock time of a moment (24-hour, as both languages' shops read it).
 * @param {number} ts milliseconds since the epoch
 * @returns {string}
 */
export function fmtTime(ts) {
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit", hour12: false }).format(new Date(ts));
}

/**
 * The day of a moment for day separators: 今天 / 昨天 / a date (with the year only
 * when it is not this year).
 * @param {number} ts
 * @returns {string}
 */
export function fmtDay(ts) {
  const date = new Date(ts);
  const now = new Date();
  const day = startOfDay(date);
  const today = startOfDay(now);
  if (day === today) return t("fmt.today");
  const yesterday = startOfDay(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1));
  if (day === yesterday) return t("fmt.yesterday");
  const options = { month: "short", day: "numeric", weekday: "short" };
  if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return new Intl.DateTimeFormat(locale(), options).format(date);
}

/**
 * A moment with its day and time, for lists where each row stands alone
 * (order progress, confirmations, files).
 * @param {number} ts
 * @returns {string}
 */
export function fmtDateTime(ts) {
  return `${fmtDay(ts)} ${fmtTime(ts)}`;
}

/**
 * Money held as whole smallest units (fen for CNY), shown with its currency.
 * The unit's size comes from the currency itself (JPY has none, CNY has two digits).
 * @param {number} cents
 * @param {string} [currency="CNY"]
 * @returns {string}
 */
export function fmtMoney(cents, currency = "CNY") {
  const code = (currency || "CNY").toUpperCase();
  let formatter;
  try {
    formatter = new Intl.NumberFormat(locale(), { style: "currency", currency: code });
  } catch {
    return `${(Number(cents) / 100).toFixed(2)} ${code}`;
  }
  const digits = formatter.resolvedOptions().maximumFractionDigits;
  return formatter.format(Number(cents) / 10 ** digits);
}

/**
 * A file size in B, KB, MB or GB (binary units, as file managers show them).
 * @param {number} n bytes
 * @returns {string}
 */
export function fmtBytes(n) {
  const bytes = Number(n) || 0;
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const number = new Intl.NumberFormat(locale(), { maximumFractionDigits: value < 10 ? 1 : 0 }).format(value);
  return `${number} ${units[unit]}`;
}

/**
 * A length of time as a player shows it: 0:07, 3:25, 1:02:09.
 * @param {number} ms
 * @returns {string}
 */
export function fmtDuration(ms) {
  const total = Math.max(0, Math.round((Number(ms) || 0) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  if (hours > 0) return `${hours}:${String(minutes).padStart(2, "0")}:${seconds}`;
  return `${minutes}:${seconds}`;
}

/**
 * A postal address on one line: who, then the place, then the postcode
 * ("李雷 13800000000 · 中国 浙江 杭州 文三路 90 号 · 310000").
 * @param {object|null} address the order's `address` fields
 * @returns {string}
 */
export function fmtAddress(address) {
  if (!address || typeof address !== "object") return "";
  const a = address;
  const who = [a.name, a.phone].filter(Boolean).join(" ");
  const place = [a.country, a.region, a.city, a.district, a.line1, a.line2].filter(Boolean).join(" ");
  return [who, place, a.postcode].filter(Boolean).join(" · ");
}
