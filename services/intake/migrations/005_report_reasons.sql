-- A country mission's report reaches the public stream with a public reason code only
-- (contracts/reasons.py); its own code and words stay here, for the host mission's caseworkers,
-- beside the stream event they became (status_timeline's key).
CREATE TABLE reported_reasons (
    event_source text NOT NULL,
    event_id     text NOT NULL,
    case_id      uuid NOT NULL,
    reported_by  text NOT NULL,
    reason_code  text,
    reason       text,
    PRIMARY KEY (event_source, event_id)
);
