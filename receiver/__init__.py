"""Hookyard's receiver: accepts signed WorkOS webhooks and stores each one durably before answering 200.

Run it with `python -m receiver`; embed it with `create_app(settings)`.
"""

from __future__ import annotations

from receiver.app import create_app, create_ops_app, receiver_state
from receiver.state import ReceiverState

__all__ = [
    # shared state of a running receiver
    "ReceiverState",
    # apps
    "create_app",
    "create_ops_app",
    "receiver_state",
]
