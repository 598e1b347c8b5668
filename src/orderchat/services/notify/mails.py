"""Wording a delivery for its person: the push they see, the mail they get.

A customer's mail links back to their order with a fresh invitation token, so
it signs them in the way the shop's invitation link does, on any device;
staff links open the conversation at the message. Every mail carries a
one-click unsubscribe link for its kind (messages, orders, urgent).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING

from orderchat.core.ids import OrderId, UserId
from orderchat.core.model import UserKind
from orderchat.core.notify import NO_PREFERENCES, Occasion, mail_kind, unsubscribe_token
from orderchat.core.texts import DEFAULT_LANGUAGE, say
from orderchat.notify.mail import (
    MissedItem,
    missed_messages_mail,
    order_status_mail,
    urgent_reminder_mail,
)
from orderchat.services.accounts import token_hash
from orderchat.services.notify.events import Links, Told, told, worded
from orderchat.services.ports import Clock
from orderchat.storage import orders as order_store
from orderchat.storage.engine import Database
from orderchat.storage.notify import Delivery, Person
from orderchat.storage.notify_reads import StreamMessage

if TYPE_CHECKING:
    from orderchat.services.notify.worker import Facts

# A mail's sign-in link works as long as an invitation link does.
LINK_TTL_MS = 30 * 24 * 3600 * 1000


class MailBuilder:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        links: Links,
        shop_name: str,
        sender: str,
        unsubscribe_secret: bytes,
    ) -> None:
        self._db = db
        self._clock = clock
        self.links = links
        self.shop_name = shop_name
        self.sender = sender
        self._secret = unsubscribe_secret

    def language_of(self, person: Person | None, facts: Facts) -> str:
        if person is None:
            return DEFAULT_LANGUAGE
        chosen = facts.prefs.get(person.id, NO_PREFERENCES).language
        return chosen or person.language or DEFAULT_LANGUAGE

    def told(self, delivery: Delivery, message: object, facts: Facts, recipient: UserId) -> Told:
        """The push a person sees for one delivery."""
        stored = facts.messages[delivery.message_id]
        person = facts.persons.get(recipient)
        sender = facts.persons.get(stored.sender)
        return told(
            stored,
            Occasion(delivery.occasion),
            customer=person is not None and person.kind is UserKind.CUSTOMER,
            language=self.language_of(person, facts),
            sender_name=sender.display_name if sender else "",
            shop_name=self.shop_name,
            links=self.links,
            step=delivery.step,
            order=facts.orders.get(delivery.conv),
            merged=delivery.merged,
        )

    async def compose(
        self,
        recipient: UserId,
        address: str,
        deliveries: Sequence[Delivery],
        facts: Facts,
        now: int,
    ) -> EmailMessage:
        person = facts.persons[recipient]
        language = self.language_of(person, facts)
        first = deliveries[0]
        kind = mail_kind(Occasion(first.occasion))
        unsubscribe = self.links.unsubscribe(unsubscribe_token(self._secret, recipient, kind))
        items = [item for d in deliveries for item in self._items(d, facts, language)]
        if person.kind is UserKind.CUSTOMER:
            order = facts.orders.get(first.conv)
            link = await self._sign_in_link(order["id"], recipient, now) if order else items[0].link
            items = [_relinked(item, link) for item in items]
            if len(items) == 1 and order is not None:
                return order_status_mail(
                    to=address,
                    sender=self.sender,
                    language=language,
                    shop_name=self.shop_name,
                    order_number=order["number"],
                    status_text=items[0].text,
                    detail=items[0].sender,
                    link=link,
                    unsubscribe_link=unsubscribe,
                    now_ms=now,
                )
        else:
            link = self.links.absolute("/")
            if first.step > 0:
                return urgent_reminder_mail(
                    to=address,
                    sender=self.sender,
                    language=language,
                    shop_name=self.shop_name,
                    item=items[0],
                    reminder=first.step,
                    link=items[0].link,
                    unsubscribe_link=unsubscribe,
                    now_ms=now,
                )
        return missed_messages_mail(
            to=address,
            sender=self.sender,
            language=language,
            shop_name=self.shop_name,
            person=person.display_name,
            items=items,
            link=link,
            unsubscribe_link=unsubscribe,
            now_ms=now,
        )

    def _items(self, delivery: Delivery, facts: Facts, language: str) -> list[MissedItem]:
        """The delivery's message, after the earlier ones it stands for that the worker
        read; those it could not list are counted on the first line."""
        listed = list(facts.earlier.get(delivery.id, ()))
        latest = facts.messages[delivery.message_id]
        unlisted = delivery.merged - 1 - len(listed)
        return [
            self._item(message, facts, language, unlisted if n == 0 else 0)
            for n, message in enumerate([*listed, latest])
        ]

    def _item(
        self, message: StreamMessage, facts: Facts, language: str, unlisted: int
    ) -> MissedItem:
        sender = facts.persons.get(message.sender)
        where = message.conv_title or (sender.display_name if sender else "")
        order = facts.orders.get(message.conv)
        if order and not message.conv_title:
            where = order["number"]
        text = worded(message, language)
        if unlisted > 0:
            earlier = say("notify.merged_earlier", count=unlisted).render(language)
            text = f"{earlier} {text}"
        return MissedItem(
            conversation=where,
            sender=sender.display_name if sender else "",
            text=text,
            ts_ms=message.ts,
            link=self.links.absolute(self.links.staff_path(message.conv, message.seq)),
            urgent=message.urgent,
        )

    async def _sign_in_link(self, order_id: str, customer: UserId, now: int) -> str:
        token = secrets.token_urlsafe(32)
        async with self._db.write("notify-link") as conn:
            await order_store.insert_invitation_txn(
                conn,
                token_hash(token),
                OrderId(order_id),
                customer,
                customer,
                now,
                now + LINK_TTL_MS,
            )
        return self.links.customer_sign_in(token)


def _relinked(item: MissedItem, link: str) -> MissedItem:
    """A customer's items all open their signed-in order page."""
    return MissedItem(
        conversation=item.conversation,
        sender=item.sender,
        text=item.text,
        ts_ms=item.ts_ms,
        link=link,
        urgent=item.urgent,
    )
