-- A withdrawal takes effect here, where seats and departures are decided under the case's lock:
-- before departure it frees the seat and is announced; after departure it comes too late.
ALTER TABLE cases ADD COLUMN withdrawn_at timestamptz;

CREATE TABLE withdrawals (
    case_id     uuid PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    applied     boolean     NOT NULL,
    detail      text        NOT NULL
);
