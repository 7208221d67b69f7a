-- Reporting's projection: the public status stream, the cases' aggregate-safe profiles and the
-- crossing requirements' changes. No name, birth date, document or free text is ever written here:
-- none of the topics read carries one.
CREATE TABLE status_changes (
    id            bigserial PRIMARY KEY,
    case_id       uuid        NOT NULL,
    status        text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    members       int         NOT NULL,
    movement_id   text,
    checkpoint_id text,
    place_name    text,
    country       text,
    reason_code   text
);
CREATE INDEX status_changes_time ON status_changes (occurred_at);

-- The latest profile of each case (an update or an erasure replaces it).
CREATE TABLE profiles (
    case_id             uuid PRIMARY KEY,
    profiled_at         timestamptz NOT NULL,
    route_id            text        NOT NULL,
    registered_on       date        NOT NULL,
    planned_travel_date date        NOT NULL,
    origin_city         text,
    members             jsonb       NOT NULL,
    erased              boolean     NOT NULL DEFAULT false
);

CREATE TABLE requirement_changes (
    requirement_id uuid        NOT NULL,
    change         text        NOT NULL CHECK (change IN ('published', 'lifted')),
    checkpoint_id  text        NOT NULL,
    at             timestamptz NOT NULL,
    code           text        NOT NULL DEFAULT '',
    description    text        NOT NULL DEFAULT '',
    effective_from date,
    PRIMARY KEY (requirement_id, change)
);

-- Situation reports as generated (the latest of each day): what was sent can be sent again.
CREATE TABLE situation_reports (
    day          date PRIMARY KEY,
    generated_at timestamptz NOT NULL,
    threshold    int         NOT NULL,
    html         text        NOT NULL,
    pdf          bytea       NOT NULL
);
