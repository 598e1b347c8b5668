"""dossier.pdf: the record for people to read, drawn from dossier.json and nothing else.

Every page carries its number, the conversation's chain head and the export
time, so a single printed page still says which record it belongs to and how
to check it. What was said before the order, in the consults it came from,
comes before the order's own conversation, drawn the same way. Pictures are
shown from their previews (small enough to print), each with the name of its
original in the ZIP. All text is set in WenQuanYi Micro Hei, which covers
Chinese and Latin alike, and is embedded (subset) so the PDF reads the same
on any machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image

from orderchat.core.errors import Unavailable
from orderchat.core.orders import format_address, format_amount
from orderchat.core.texts import say

# Debian's fonts-wqy-microhei (the Makefile's SYSTEM_PACKAGES).
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
FONT = "cjk"
LINE_MM = 5.0
PICTURE_MM = 70.0  # the largest side of a picture on the page
GREY = (110, 110, 110)

Json = dict[str, Any]


def _when(ms: object) -> str:
    """A time as people read it: local date and time with its UTC offset."""
    if not isinstance(ms, int):
        return ""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z")


class _Pages(FPDF):
    """A4 pages whose footer says which record this is and how to check it."""

    def __init__(self, footer_lines: Callable[[int], tuple[str, str]]) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer_lines = footer_lines
        if not CJK_FONT.is_file():
            raise Unavailable(say("dossier.font_missing", path=str(CJK_FONT)))
        self.add_font(FONT, fname=str(CJK_FONT))
        self.set_auto_page_break(True, margin=22)
        self.set_margins(15, 15, 15)
        self.alias_nb_pages()

    def footer(self) -> None:
        first, second = self._footer_lines(self.page_no())
        self.set_y(-16)
        self.set_font(FONT, size=7)
        self.set_text_color(*GREY)
        self.cell(0, 4, first, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(0, 4, second, align="C")
        self.set_text_color(0, 0, 0)


class DossierPdf:
    """Lays out one dossier document; `render` returns the PDF's bytes."""

    def __init__(self, doc: Json, previews: Mapping[str, Path]) -> None:
        self.doc = doc
        self.lang = str(doc["language"])
        self.previews = previews
        self.people: Mapping[str, str] = doc["people"]
        head, exported = doc["conversation"]["head"], _when(doc["exported_at"])
        self.pdf = _Pages(
            lambda page: (
                self.t("dossier.pdf_footer_page", page=page, pages="{nb}", exported=exported),
                self.t("dossier.pdf_footer_head", head=head),
            )
        )

    def t(self, key: str, /, **params: object) -> str:
        return say(key, **params).render(self.lang)

    def name(self, user: object) -> str:
        return self.people.get(str(user), str(user)) if user else ""

    def render(self) -> bytes:
        self.pdf.add_page()
        self._order()
        self._timeline()
        self._consults()
        self._conversation()
        self._confirmations()
        self._money()
        self._issues()
        self._calls()
        self._chain()
        return bytes(self.pdf.output())

    # --- building blocks ---------------------------------------------------------------

    def heading(self, text: str, size: float = 13) -> None:
        self.pdf.ln(2)
        self.pdf.set_font(FONT, size=size)
        self.line(text, size=size, height=LINE_MM + 2)
        self.pdf.set_font(FONT, size=10)

    def line(
        self, text: str, *, size: float = 10, grey: bool = False, height: float = LINE_MM
    ) -> None:
        self.pdf.set_font(FONT, size=size)
        if grey:
            self.pdf.set_text_color(*GREY)
        self.pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.set_text_color(0, 0, 0)

    def picture(self, path: Path) -> None:
        """A preview, scaled to fit PICTURE_MM, on a new page if it does not fit here."""
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        width, height = image.size
        scale = PICTURE_MM / max(width, height, 1)
        w_mm, h_mm = width * scale, height * scale
        if self.pdf.will_page_break(h_mm + 2):
            self.pdf.add_page()
        self.pdf.image(image, x=self.pdf.l_margin, y=self.pdf.get_y() + 1, w=w_mm, h=h_mm)
        self.pdf.set_y(self.pdf.get_y() + h_mm + 2)

    # --- sections ------------------------------------------------------------------------

    def _order(self) -> None:
        doc, order = self.doc, self.doc["order"]
        customer = doc["customer"]
        self.heading(self.t("dossier.pdf_title", number=order["number"]), size=16)
        view = self.t("dossier.view_staff" if doc["view"] == "staff" else "dossier.view_customer")
        self.line(self.t("dossier.pdf_exported_by", who=doc["exported_by"], view=view), grey=True)
        key = doc.get("anchor_key")
        if key:
            self.line(
                self.t("dossier.pdf_anchor_key", key_id=key["key_id"], key=key["public_key"]),
                grey=True,
            )
        self.heading(self.t("dossier.pdf_order"))
        status = order["status_label"].get(self.lang) or order["status"]
        who = " ".join(p for p in (customer["name"], customer["company"] or "") if p)
        self.line(
            self.t("dossier.pdf_order_line", number=order["number"], customer=who, status=status)
        )
        currency = order["currency"]
        self.line(
            self.t(
                "dossier.pdf_total",
                total=format_amount(order["total_cents"], currency),
                paid=format_amount(order["paid_cents"], currency),
                payment=order["payment_status"],
            )
        )
        self.line(self.t("dossier.pdf_created", time=_when(order["created_ts"])))
        for item in order["items"]:
            price = format_amount(item["unit_price_cents"], currency)
            self.line(
                self.t(
                    "dossier.pdf_item",
                    sku=item["sku"],
                    name=item["name"],
                    quantity=item["quantity"],
                    price=price,
                )
            )
        self._order_extras(order)

    def _order_extras(self, order: Json) -> None:
        if order.get("address"):
            self.line(self.t("dossier.pdf_address", address=format_address(order["address"])))
        if order.get("carrier") or order.get("tracking_no"):
            carrier, tracking = order.get("carrier") or "", order.get("tracking_no") or ""
            self.line(self.t("dossier.pdf_shipping", carrier=carrier, tracking=tracking))
        if order.get("note"):
            self.line(self.t("dossier.pdf_note", note=order["note"]))

    def _state(self, state: object) -> str:
        labels = self.doc["workflow"].get("labels", {}).get(str(state), {})
        return str(labels.get(self.lang) or state)

    def _timeline(self) -> None:
        self.heading(self.t("dossier.pdf_timeline"))
        steps = self.doc["timeline"]
        if not steps:
            self.line(self.t("dossier.pdf_none"), grey=True)
        for step in steps:
            label = self._state(step["to"]) if step["to"] else self.t("dossier.pdf_created_step")
            self.line(
                self.t(
                    "dossier.pdf_step",
                    time=_when(step["ts"]),
                    label=label,
                    by=self.name(step["by"]),
                    seq=step["seq"],
                )
            )
            if step.get("note"):
                self.line(self.t("dossier.pdf_note", note=step["note"]), grey=True)

    def _consults(self) -> None:
        """Before the order: each consult it came from, where it began, every message."""
        consults = self.doc.get("consults") or []
        if not consults:
            return
        self.heading(self.t("dossier.pdf_consults"))
        for consult in consults:
            self.pdf.ln(1)
            started = _when(consult["created_ts"])
            self.line(self.t("dossier.pdf_consult", consult=consult["id"], time=started), size=11)
            self.line(
                self.t(
                    "dossier.pdf_consult_from",
                    source=consult["source"] or "-",
                    page=consult["page_url"] or "-",
                    sku=consult["sku"] or "-",
                ),
                size=9,
                grey=True,
            )
            self._messages(consult)

    def _conversation(self) -> None:
        self.heading(self.t("dossier.pdf_conversation"))
        self._messages(self.doc)

    def _messages(self, part: Json) -> None:
        """The messages of one conversation: the order's (the document), or a consult's."""
        media_of = {f["path"]: f["media"] for f in part["files"]}
        edits: dict[int, list[Json]] = {}
        for edit in part["edits"]:
            edits.setdefault(edit["seq"], []).append(edit)
        members = [m["user"] for m in part["members"] if m["current"]]
        for message in part["messages"]:
            self._message(message, edits.get(message["seq"], []), media_of, members)

    def _message(
        self, message: Json, edits: list[Json], media_of: Mapping[str, str], members: list[str]
    ) -> None:
        fields = message["fields"]
        marks = []
        if message["internal"]:
            marks.append(self.t("dossier.pdf_internal"))
        if fields["urgent"]:
            marks.append(self.t("dossier.pdf_urgent"))
        if message["recalled"]:
            marks.append(self.t("dossier.pdf_recalled", time=_when(message["recalled_ts"])))
        head = self.t(
            "dossier.pdf_message_head",
            seq=message["seq"],
            sender=self.name(fields["sender"]),
            time=_when(fields["ts"]),
        )
        self.pdf.ln(1)
        self.line(" · ".join([head, *marks]), size=9, grey=True)
        if fields["reply_to"]:
            self.line(self.t("dossier.pdf_reply", seq=fields["reply_to"]), size=8, grey=True)
        if fields["text"]:
            self.line(fields["text"])
        for edit in sorted(edits, key=lambda e: int(e["version"])):
            edited = edit["fields"]
            self.line(
                self.t(
                    "dossier.pdf_edited",
                    version=edit["version"],
                    time=_when(edited["ts"]),
                    text=edited["text"],
                ),
                size=9,
            )
        for path in message["files"]:
            preview = self.previews.get(media_of.get(path, ""))
            if preview is not None:
                self.picture(preview)
            self.pdf.set_font(FONT, size=8)
            self.pdf.cell(0, 4, self.t("dossier.pdf_file", path=path), link=path)
            self.pdf.ln(4)
        self._reads(message, members)

    def _reads(self, message: Json, members: list[str]) -> None:
        sender = message["fields"]["sender"]
        read = [self.name(u) for u in message["read_by"]]
        unread = [
            self.name(u)
            for u in members
            if u != sender and u not in message["read_by"] and self._could_see(u, message)
        ]
        parts = [self.t("dossier.pdf_read_by", names=", ".join(read) if read else "-")]
        if unread:
            parts.append(self.t("dossier.pdf_unread_by", names=", ".join(unread)))
        self.line("  ".join(parts), size=8, grey=True)

    def _could_see(self, user: str, message: Json) -> bool:
        """A customer never sees a staff-only note: they have not 'not read' it."""
        return not message["internal"] or user != self.doc["customer"]["id"]

    def _confirmations(self) -> None:
        items = self.doc["confirmations"]
        if not items:
            return
        self.heading(self.t("dossier.pdf_confirmations"))
        for item in items:
            self.line(
                self.t(
                    "dossier.pdf_item_head",
                    title=item["title"],
                    kind=item["kind"],
                    status=item["status"],
                )
            )
            for version in item["versions"]:
                self.line(
                    self.t(
                        "dossier.pdf_version",
                        number=version["number"],
                        by=self.name(version["proposed_by"]),
                        time=_when(version["proposed_ts"]),
                        text=version["text"],
                    ),
                    size=9,
                )
                self._decision(version)

    def _decision(self, version: Json) -> None:
        if version["decision"] is None:
            self.line(self.t("dossier.pdf_undecided", state=version["state"]), size=9, grey=True)
            return
        self.line(
            self.t(
                "dossier.pdf_decision",
                decision=version["decision"],
                by=self.name(version["decided_by"]),
                time=_when(version["decided_ts"]),
                comment=version["comment"] or "",
            ),
            size=9,
        )

    def _money(self) -> None:
        doc = self.doc
        self.heading(self.t("dossier.pdf_money"))
        if not doc["payments"] and doc["invoice"] is None:
            self.line(self.t("dossier.pdf_none"), grey=True)
        for payment in doc["payments"]:
            key = "dossier.pdf_refund" if payment["kind"] == "refund" else "dossier.pdf_payment"
            amount = format_amount(payment["amount_cents"], payment["currency"])
            self.line(
                self.t(
                    key,
                    time=_when(payment["ts"]),
                    amount=amount,
                    method=payment["method"],
                    reference=payment["reference"],
                    by=self.name(payment["by"]),
                )
            )
        invoice = doc["invoice"]
        if invoice is not None:
            self.line(
                self.t(
                    "dossier.pdf_invoice",
                    status=invoice["status"],
                    title=invoice["title"],
                    tax_id=invoice["tax_id"] or "-",
                    number=invoice["number"] or "-",
                    time=_when(invoice["issued_ts"] or invoice["requested_ts"]),
                )
            )

    def _issues(self) -> None:
        if self.doc["view"] != "staff":
            return  # exceptions are the shop's own record
        self.heading(self.t("dossier.pdf_issues"))
        if not self.doc["issues"]:
            self.line(self.t("dossier.pdf_none"), grey=True)
        for issue in self.doc["issues"]:
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(issue["detail"].items()))
            self.line(
                self.t(
                    "dossier.pdf_issue",
                    time=_when(issue["raised_ts"]),
                    kind=issue["kind"],
                    by=self.name(issue["raised_by"]),
                    detail=detail,
                )
            )
            if issue["outcome"] is None:
                self.line(self.t("dossier.pdf_issue_open"), size=9, grey=True)
                continue
            outcome = issue["outcome_detail"] or {}
            self.line(
                self.t(
                    "dossier.pdf_settled",
                    time=_when(issue["settled_ts"]),
                    outcome=issue["outcome"],
                    by=self.name(issue["settled_by"]),
                    detail=", ".join(f"{k}: {v}" for k, v in sorted(outcome.items())),
                ),
                size=9,
            )

    def _calls(self) -> None:
        calls = self.doc["calls"]
        if not calls:
            return
        self.heading(self.t("dossier.pdf_calls"))
        for call in calls:
            self.line(
                self.t(
                    "dossier.pdf_call",
                    seq=call["seq"],
                    time=_when(call["ts"]),
                    caller=self.name(call.get("caller")),
                    text=call["text"],
                )
            )

    def _chain(self) -> None:
        conv = self.doc["conversation"]
        self.heading(self.t("dossier.pdf_chain"))
        self.line(
            self.t(
                "dossier.pdf_chain_summary",
                links=conv["links"],
                withheld=conv["withheld"],
                head=conv["head"],
            )
        )
        self._broken(conv)
        for consult in self.doc.get("consults") or []:
            held = consult["conversation"]
            self.line(
                self.t(
                    "dossier.pdf_chain_consult",
                    consult=consult["id"],
                    links=held["links"],
                    withheld=held["withheld"],
                    head=held["head"],
                )
            )
            self._broken(held)
        self.line(self.t("dossier.pdf_chain_how"), size=9, grey=True)

    def _broken(self, conv: Json) -> None:
        """Where a chain was already broken when it was exported, if it was."""
        if conv["holds"]:
            return
        broken = conv["broken"]
        self.line(
            self.t(
                "dossier.pdf_chain_broken",
                seq=broken["seq"],
                version=broken["version"],
                reason=broken["reason"],
            )
        )
