/**
 * Error sentences used when the server's own words are not there to show (no answer,
 * a proxy's page, an older server): each says what happened without quoting the
 * server, so a sentence never mixes this page's language with another.
 */

import { addStrings } from "../i18n.js";

addStrings({
  "zh-CN": {
    "texts.err.generic": "出错了，请稍后再试。",
    "texts.err.conflict": "操作与当前状态冲突，请刷新后再试。",
    "texts.err.too_large": "内容太大了。",
    "texts.err.cancelled": "已取消。",
  },
  en: {
    "texts.err.generic": "Something went wrong. Please try again.",
    "texts.err.conflict": "That conflicts with the current state. Please refresh and try again.",
    "texts.err.too_large": "That is too large.",
    "texts.err.cancelled": "Cancelled.",
  },
});
