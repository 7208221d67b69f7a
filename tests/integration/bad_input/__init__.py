"""The bad-input harness: what test_bad_input_kafka.py and test_bad_input_http.py are built from.

``records`` makes valid events of every consumed topic and describes a bad record (``Bad``);
``corpus`` is the fixed corpus of bad records per topic and the valid records sent behind them;
``strategies`` is Hypothesis' share (valid events mutated, random bytes and headers); ``running``
reads the platform as it runs (which groups read which topic, how far they got); ``accounting``
accounts for every record per consumer group and reports the figures.

Shared by both test modules: the deployment's routes, the source a country mission reports from,
and the far-future travel date that keeps what the fuzzing creates out of other tests' way.
"""

from __future__ import annotations

from datetime import date

from contracts.routes import RouteBook
from devkit.devstack import DEFAULT_ROUTES

ROUTES = RouteBook.load(DEFAULT_ROUTES)
RECEPTION = "/missions/TJK/reception"  # a country mission's reception: it may report "received"
FAR_FUTURE = date(2950, 1, 1)  # no other test plans movements for such a date
