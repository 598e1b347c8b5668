/**
 * Interface text for the connection state, loads that retry, the composer's Enter
 * choice and picture preview, and the order panel's step wording, in both languages.
 */

import { addStrings } from "../i18n.js";

addStrings({
  "zh-CN": {
    "wf.noNetwork": "网络已断开，等待恢复…",
    "wf.waitingNetwork": "等待网络",
    "wf.loadRetry": "重试",
    "wf.loadRetrying": "连接恢复后将自动重试",
    "wf.enterSends": "按 Enter 发送",
    "wf.hintEnterSends": "Enter 发送，Shift+Enter 换行",
    "wf.hintCtrlEnter": "Ctrl+Enter 发送，Enter 换行",
    "wf.hintCmdEnter": "⌘+Enter 发送，Enter 换行",
    "wf.placeholderEnter": "输入消息，Enter 发送",
    "wf.placeholderCtrl": "输入消息，Ctrl+Enter 发送",
    "wf.placeholderCmd": "输入消息，⌘+Enter 发送",
    "wf.picturesTitle": "发送 {count} 张图片",
    "wf.caption": "图片说明",
    "wf.captionPlaceholder": "添加说明（可选）",
    "wf.sendPictures": "发送",
    "wf.cancelPictures": "取消",
    "wf.removePicture": "移除 {name}",
    "wf.tooManyPictures": "一次最多发送 {count} 张图片",
    "wf.orderToggle": "订单",
    "wf.repeatStep": "再次进行「{label}」",
    "wf.backTo": "退回「{label}」",
  },
  en: {
    "wf.noNetwork": "No network, waiting…",
    "wf.waitingNetwork": "Waiting for network",
    "wf.loadRetry": "Retry",
    "wf.loadRetrying": "Retries by itself when the connection is back",
    "wf.enterSends": "Enter sends",
    "wf.hintEnterSends": "Enter sends, Shift+Enter for a new line",
    "wf.hintCtrlEnter": "Ctrl+Enter sends, Enter for a new line",
    "wf.hintCmdEnter": "⌘+Enter sends, Enter for a new line",
    "wf.placeholderEnter": "Write a message, Enter to send",
    "wf.placeholderCtrl": "Write a message, Ctrl+Enter to send",
    "wf.placeholderCmd": "Write a message, ⌘+Enter to send",
    "wf.picturesTitle": "Send {count} picture(s)",
    "wf.caption": "Caption",
    "wf.captionPlaceholder": "Add a caption (optional)",
    "wf.sendPictures": "Send",
    "wf.cancelPictures": "Cancel",
    "wf.removePicture": "Remove {name}",
    "wf.tooManyPictures": "At most {count} pictures at a time",
    "wf.orderToggle": "Order",
    "wf.repeatStep": "Repeat “{label}”",
    "wf.backTo": "Send back to “{label}”",
  },
});
