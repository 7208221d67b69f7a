"""What every service's HTTP API shares beyond the runtime: types for response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

Timestamp = Annotated[
    datetime,
    # As Corridor's answers have always written times: ISO 8601 with the offset ("+00:00", not
    # pydantic's "Z"), so integrators' parsers see no change.
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A point in time in a response model."""
