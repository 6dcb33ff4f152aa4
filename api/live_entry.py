"""One entry of the all-orders Redis stream, decoded and encoded once per process.

Every subscriber of an order (or a user) receives the same text: decoding the
event and encoding the client message once per entry, not once per socket,
keeps the cost of fan-out to the send itself.
"""

from __future__ import annotations

from functools import cached_property

from adapters.redis_layout import decode_entry
from api.client_messages import client_message_text
from domain.order import INTERNAL_EVENTS
from domain.ports import RecordedEvent


def order_message_text(recorded: RecordedEvent) -> str:
    at = recorded.recorded_at.isoformat()
    return client_message_text(recorded.stream_id, recorded.version, recorded.event, at)


def user_message_text(recorded: RecordedEvent) -> str:
    at = recorded.recorded_at.isoformat()
    # A user's streams interleave: the message carries the position to resume from.
    return client_message_text(recorded.stream_id, recorded.version, recorded.event, at, recorded.position)


def is_internal(recorded: RecordedEvent) -> bool:
    return type(recorded.event) in INTERNAL_EVENTS


class LiveEntry:
    __slots__ = ("__dict__", "fields")

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields

    @property
    def order_id(self) -> str:
        return self.fields.get("order_id", "")

    @property
    def user_id(self) -> str:
        return self.fields.get("user_id", "")

    @property
    def position(self) -> int:
        return int(self.fields["position"])

    @property
    def version(self) -> int:
        return int(self.fields["version"])

    @cached_property
    def recorded(self) -> RecordedEvent:
        return decode_entry(self.fields)

    @cached_property
    def order_text(self) -> str:
        return order_message_text(self.recorded)

    @cached_property
    def user_text(self) -> str:
        return user_message_text(self.recorded)
