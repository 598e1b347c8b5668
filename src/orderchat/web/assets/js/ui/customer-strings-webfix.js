/**
 * The customer page's text for the connection state and loads that retry themselves,
 * in both languages.
 */

import { addStrings } from "../i18n.js";

addStrings({
  "zh-CN": {
    "c.wf.noNetwork": "网络已断开，等待恢复…",
    "c.wf.retrying": "连接恢复后将自动重试",
  },
  en: {
    "c.wf.noNetwork": "No network, waiting…",
    "c.wf.retrying": "Retries by itself when the connection is back",
  },
});
