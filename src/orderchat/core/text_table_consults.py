# ruff: noqa: E501  (one sentence per line reads and diffs best)
"""The sentences of pre-sales consults (docs/consults.md): key -> (zh-CN, en).

Kept apart from core/text_table.py, which merges them into `TEXTS`, so that one
feature's words read together. The same rules hold: one line per key, sorted,
the zh-CN template in Chinese and the en one in English, both naming the same
placeholders (tests/unit/test_language_scan.py). The `note.*` ones are the
system notes of a consult's conversation, which the web app renders itself.
"""

from __future__ import annotations

from collections.abc import Mapping

# fmt: off
CONSULT_TEXTS: Mapping[str, tuple[str, str]] = {
    "consults.admins_only": ("只有管理员可以这样做", "only an administrator may do this"),
    "consults.all_for_admins": ("只有管理员可以查看全部咨询", "only an administrator sees every consult"),
    "consults.already_taken": ("{agent} 已经在接待这条咨询", "{agent} has taken this consult already"),
    "consults.already_theirs": ("这条咨询已经由 {agent} 接待", "{agent} has this consult already"),
    "consults.blocked": ("很抱歉，您的消息暂时无法送达。如需帮助，请直接联系本店。", "Sorry, your messages cannot be delivered at the moment. Please contact the shop directly."),
    "consults.has_order": ("这条咨询已经生成订单 {number}", "this consult has an order already: {number}"),
    "consults.is_closed": ("这条咨询已结束", "this consult is closed"),
    "consults.link_body": ("打开下面的链接，就能在这台设备上继续与我们聊天（24 小时内有效，仅可使用一次）：\n\n{link}\n\n如果不是您本人操作，请忽略这封邮件。", "Open this link to continue the chat with us on this device (valid for 24 hours, once):\n\n{link}\n\nIf you did not ask for it, ignore this e-mail."),
    "consults.link_not_valid": ("该链接无效、已过期或已经用过", "that link is not valid, has expired or was used already"),
    "consults.link_subject": ("在另一台设备上继续与 {shop} 聊天", "Continue your chat with {shop} on another device"),
    "consults.mail_failed": ("邮件没有发出，请稍后再试", "the e-mail could not be sent; try again later"),
    "consults.mail_not_set": ("本店没有设置邮件服务器", "this shop has no mail server set up"),
    "consults.no_consult": ("没有咨询 {consult}", "no consult {consult}"),
    "consults.no_email": ("请填写邮箱地址", "give an e-mail address"),
    "consults.not_a_visitor": ("{user} 不是访客或客户", "{user} is not a visitor or customer"),
    "consults.not_your_queue": ("您不负责这条咨询所在的队列", "this consult's queue is not yours"),
    "consults.qr_format_invalid": ("二维码格式只能是 {formats} 之一", "a QR code's format is one of {formats}"),
    "consults.qr_tag_invalid": ("标签最多 64 个字符，只能包含字母、数字和 . _ -", "a tag is up to 64 letters, digits, '.', '_' or '-'"),
    "consults.rules_invalid": ("咨询规则中的 {where} 无效：需要 {reason}", "consult rules: {where} is not valid: expected {reason}"),
    "consults.transfer_one_target": ("请选择转给一位同事或一个角色（只能选一个）", "transfer to one colleague or to one role"),
    "consults.transfer_to_staff": ("只能转给在职的员工", "a consult can go to an active staff member only"),
    "consults.unverified_files": ("下单之前只能发送图片和语音", "before you have an order you can send pictures and voice only"),
    "consults.visitor_file_too_large": ("文件太大：下单之前每个文件最多 {mb} MB", "file too large: up to {mb} MB each before you have an order"),
    "consults.visitors_only": ("只有访客可以这样做", "only a visitor can do this"),
    "note.consult_assigned": ("{agent} 为您服务", "{agent} is here to help you"),
    "note.consult_away": ("我们现在下班了，{next_open} 上班后会第一时间回复您", "We are away now and will answer you first thing at {next_open}"),
    "note.consult_away_own": ("{text}", "{text}"),
    "note.consult_closed": ("本次咨询已结束。还有问题可以随时留言。", "This consult is closed. Write again any time."),
    "note.consult_escalated": ("{name} 已等待 {minutes} 分钟，还没有同事回复", "{name} has waited {minutes} minutes without an answer"),
    "note.consult_opened": ("{name} 发起了咨询", "{name} started a consult"),
    "note.consult_ordered": ("已为您创建订单 {number}", "Order {number} was created for you"),
    "note.consult_queued": ("同事们都在忙，您排在第 {position} 位，请稍候", "Everyone is busy; you are number {position} in the queue"),
    "note.consult_reopened": ("{name} 又发来消息，咨询已重新打开", "{name} wrote again: the consult is open again"),
    "note.consult_transfer_note": ("{by} 转交时备注：{note}", "{by} noted on the transfer: {note}"),
    "note.consult_transferred": ("已转给 {agent} 继续为您服务", "{agent} will help you from here"),
    "note.consult_transferred_colleague": ("已转给其他同事继续为您服务", "A colleague will help you from here"),
    "notify.kind.product": ("商品卡片", "Product card"),
    "products.no_picture": ("SKU {sku} 没有商品图片", "SKU {sku} has no picture"),
    "products.options_invalid": ("商品选项应为最多 {most} 组，每组有名称和取值列表", "options are up to {most} entries, each a name and a list of values"),
    "products.picture_not_image": ("商品图片必须是 JPEG、PNG 或 WebP 图片", "a product picture must be a JPEG, PNG or WebP image"),
    "products.picture_too_large": ("商品图片最大 {mb} MB", "a product picture is at most {mb} MB"),
    "ratelimit.consults_from_address": ("来自该地址的新咨询", "new consults from this address"),
}
# fmt: on
