/**
 * Interface text for an order step's photos: what the status dialog says about them
 * (needed or not, who will see them) and how a step's message shows them, in both
 * languages.
 */

import { addStrings } from "../i18n.js";

addStrings({
  "zh-CN": {
    "ph.required": "这一步需要至少一张照片。",
    "ph.optional": "可选：照片会随这一步的消息一起保存。",
    "ph.customerSees": "客户也能看到这些照片。",
    "ph.staffOnly": "仅员工可见，客户看不到这些照片。",
    "ph.stepPhotos": "这一步的照片",
  },
  en: {
    "ph.required": "This step needs at least one photo.",
    "ph.optional": "Optional: photos are kept with this step's message.",
    "ph.customerSees": "The customer sees these photos too.",
    "ph.staffOnly": "Staff only: the customer does not see these photos.",
    "ph.stepPhotos": "Photos of this step",
  },
});
