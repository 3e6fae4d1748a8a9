"""Publishing side of the bus: the publisher SDK, spreadsheet import and sample data."""

from creditbus.contract.validation import EventRejected
from creditbus.publish.producer import (
    CreditPublisher,
    DeliveryReport,
    DeliveryResult,
    EventEncoder,
    PreparedEvent,
    PublishIncomplete,
)

__all__ = [
    "CreditPublisher",
    "DeliveryReport",
    "DeliveryResult",
    "EventEncoder",
    "EventRejected",
    "PreparedEvent",
    "PublishIncomplete",
]
