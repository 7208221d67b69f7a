-- Where this service first met each case: the span (W3C traceparent) of the request or record.
-- A later event it writes about the case links to that span, so a command's trace leads back to
-- the case's earlier traces (corridor/tracing.py). No personal data: ids only.
CREATE TABLE trace_origins (
    case_id     text PRIMARY KEY,
    traceparent text        NOT NULL,
    noted_at    timestamptz NOT NULL DEFAULT now()
);
