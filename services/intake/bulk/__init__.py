"""Bulk import: the registration forms field offices collect offline, thousands at a time.

One room per concern: ``format`` (the file format, documented there, and the report's rows),
``parse`` (a file into rows, a row into a registration), ``importer`` (the rows through the
registration use cases, in chunks), ``models`` (what ``POST /imports`` answers) and ``cli``
(``python -m services.intake.bulk FILE --namespace NS --url URL``). The names below are the ones
the service and the tests use.
"""

from services.intake.bulk.format import (
    CASE_COLUMNS,
    COLUMNS,
    MAX_BYTES,
    NAMESPACE_PATTERN,
    OUTCOMES,
    PERSON_COLUMNS,
    REQUIRED_COLUMNS,
    ROW_KEY_MAX,
    FileRejected,
    Outcome,
    Row,
    counts,
    csv_column,
    entry,
    registration_key,
    repeats,
)
from services.intake.bulk.importer import CONCURRENCY, ROWS_PER_CONNECTION, report_json, run_import
from services.intake.bulk.models import OPENAPI_BODY, EntryOut, ImportReport, ReasonOut
from services.intake.bulk.parse import command_for, media_format, parse, parse_csv, parse_json

__all__ = [
    "CASE_COLUMNS",
    "COLUMNS",
    "CONCURRENCY",
    "MAX_BYTES",
    "NAMESPACE_PATTERN",
    "OPENAPI_BODY",
    "OUTCOMES",
    "PERSON_COLUMNS",
    "REQUIRED_COLUMNS",
    "ROWS_PER_CONNECTION",
    "ROW_KEY_MAX",
    "EntryOut",
    "FileRejected",
    "ImportReport",
    "Outcome",
    "ReasonOut",
    "Row",
    "command_for",
    "counts",
    "csv_column",
    "entry",
    "media_format",
    "parse",
    "parse_csv",
    "parse_json",
    "registration_key",
    "repeats",
    "report_json",
    "run_import",
]
