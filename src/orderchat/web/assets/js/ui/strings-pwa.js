/**
 * Interface text of the installed app, shared by both pages: the offline notice with
 * the sends still waiting, and the switch for notifications on this device.
 */

import { addStrings } from "../i18n.js";

addStrings({
  "zh-CN": {
    "pwa.offline.noNetwork": "离线：没有网络",
    "pwa.offline.noServer": "离线：无法连接服务器",
    "pwa.offline.text": "你写的消息保存在这台设备上，连接恢复后会自动发送。",
    "pwa.offline.pending": "等待发送（{count}）",
    "pwa.offline.nothingPending": "没有等待发送的消息。",
    "pwa.offline.unknownConv": "会话",
    "pwa.offline.attachment": "[附件]",
    "pwa.offline.forward": "[转发的消息]",
    "pwa.push.label": "本设备通知",
    "pwa.push.on": "已开启：新消息会通知到这台设备。",
    "pwa.push.off": "已关闭。",
    "pwa.push.turningOn": "正在开启…",
    "pwa.push.turningOff": "正在关闭…",
    "pwa.push.unsupported":
      "此浏览器无法接收推送通知。在 iPhone 或 iPad 上，请先用 Safari 的「添加到主屏幕」安装，再从主屏幕打开。",
    "pwa.push.insecure": "只有通过 HTTPS 打开时才能开启通知。",
    "pwa.push.denied": "通知已被浏览器拦截。请在浏览器的网站设置中允许通知后再试。",
    "pwa.push.dismissed": "没有获得通知权限，通知仍为关闭。",
    "pwa.push.unavailable": "此浏览器的推送服务不可用，无法开启通知。",
    "pwa.push.noWorker": "后台服务尚未就绪，请刷新页面后再试。",
    "pwa.push.serverOff": "此服务器没有开启推送通知。",
    "pwa.push.badKey": "服务器提供的推送密钥无效，无法开启通知。",
    "pwa.push.failed": "无法开启通知：{message}",
    "pwa.push.offFailed": "这台设备已不再接收通知，但服务器未确认：{message}",
    "pwa.push.offLocalFailed": "无法关闭通知：{message}",
  },
  en: {
    "pwa.offline.noNetwork": "Offline: no network",
    "pwa.offline.noServer": "Offline: the server cannot be reached",
    "pwa.offline.text": "What you write is kept on this device and goes out by itself when the connection is back.",
    "pwa.offline.pending": "Waiting to be sent ({count})",
    "pwa.offline.nothingPending": "Nothing is waiting to be sent.",
    "pwa.offline.unknownConv": "Conversation",
    "pwa.offline.attachment": "[attachment]",
    "pwa.offline.forward": "[forwarded message]",
    "pwa.push.label": "Notifications on this device",
    "pwa.push.on": "On: new messages notify this device.",
    "pwa.push.off": "Off.",
    "pwa.push.turningOn": "Turning on…",
    "pwa.push.turningOff": "Turning off…",
    "pwa.push.unsupported":
      "This browser cannot receive push notifications. On iPhone or iPad, install the app with Safari's “Add to Home Screen” and open it from there.",
    "pwa.push.insecure": "Notifications can be turned on only when the app is opened over HTTPS.",
    "pwa.push.denied":
      "The browser blocks notifications for this site. Allow them in the site settings, then try again.",
    "pwa.push.dismissed": "Notifications were not allowed, so they stay off.",
    "pwa.push.unavailable": "This browser's push service is not available, so notifications cannot be turned on.",
    "pwa.push.noWorker": "The app's background service is not ready yet. Reload the page and try again.",
    "pwa.push.serverOff": "This server does not send push notifications.",
    "pwa.push.badKey": "The server's push key is not valid, so notifications cannot be turned on.",
    "pwa.push.failed": "Notifications could not be turned on: {message}",
    "pwa.push.offFailed": "This device no longer gets notifications, but the server did not confirm it: {message}",
    "pwa.push.offLocalFailed": "Notifications could not be turned off: {message}",
  },
});
