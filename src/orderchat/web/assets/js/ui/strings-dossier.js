/**
 * Interface text of the order's dossier (the order panel's download), in both languages.
 */

import { addStrings } from "../i18n.js";

addStrings({
  "zh-CN": {
    "dossier.title": "证据包",
    "dossier.download": "下载证据包",
    "dossier.working": "正在生成…",
    "dossier.hint": "PDF、全部原始文件和可离线核验的哈希清单，可交给法院或品牌客户。",
    "dossier.done": "证据包已下载",
    "dossier.failed": "证据包下载失败：{message}",
  },
  en: {
    "dossier.title": "Dossier",
    "dossier.download": "Download dossier",
    "dossier.working": "Preparing…",
    "dossier.hint":
      "A PDF, every original file and a hash manifest that can be checked offline, for a court or a brand client.",
    "dossier.done": "Dossier downloaded",
    "dossier.failed": "The dossier could not be downloaded: {message}",
  },
});
