"""The queued message format: the channel marking is backward compatible both ways."""

from __future__ import annotations

import pytest

from shared.errors import WireFormatError
from shared.wire import EVENTS_API, WEBHOOK, QueuedEvent, decode_message, encode_message


def test_a_webhook_message_is_written_as_before_channels_existed() -> None:
    # Given a webhook as the receiver queues it
    event = QueuedEvent("workos", "event_1", "dsync.user.created", 1, 2, b'{"id":"event_1"}')

    # When it is encoded, Then its header has no channel (older workers read it unchanged) and it reads back
    message = encode_message(event)
    assert (
        message.split(b"\n", 1)[0]
        == b'{"v":1,"src":"workos","id":"event_1","type":"dsync.user.created","sat":1,"rat":2}'
    )
    assert decode_message(message) == event
    assert decode_message(message).channel == WEBHOOK


def test_an_events_api_copy_says_so() -> None:
    event = QueuedEvent("workos", "event_1", "dsync.user.created", 1, 2, b"{}", channel=EVENTS_API)

    message = encode_message(event)

    assert b'"ch":"events_api"' in message.split(b"\n", 1)[0]
    assert decode_message(message) == event


def test_an_unknown_channel_is_a_wire_format_error() -> None:
    with pytest.raises(WireFormatError, match="unknown channel"):
        decode_message(b'{"v":1,"src":"workos","id":"e","type":"t","sat":1,"rat":2,"ch":"carrier-pigeon"}\n{}')
