-- A country mission's report reaches the public stream with a public reason code only
-- (contracts/reasons.py) and a place of the case's route; its own code, words and place stay
-- here, for the host mission's caseworkers, beside the stream event they became
-- (status_timeline's key).
CREATE TABLE reported_reasons (
    event_source text NOT NULL,
    event_id     text NOT NULL,
    case_id      uuid NOT NULL,
    reported_by  text NOT NULL,
    reason_code  text,
    reason       text,
    place        jsonb,
    PRIMARY KEY (event_source, event_id)
);
