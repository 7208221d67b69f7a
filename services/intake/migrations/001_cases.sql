CREATE TABLE cases (
    case_id             uuid PRIMARY KEY,
    registration_key    text UNIQUE,
    route_id            text        NOT NULL,
    planned_travel_date date        NOT NULL,
    consent             jsonb       NOT NULL,
    status              text        NOT NULL,
    registered_at       timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Personal data lives only here; every read is recorded in pii_access_log.
CREATE TABLE persons (
    person_id       uuid PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES cases (case_id),
    role            text NOT NULL,
    given_names     text NOT NULL,
    surname         text NOT NULL,
    birth_date      date NOT NULL,
    sex             text NOT NULL,
    nationality     text NOT NULL,
    document        jsonb NOT NULL,
    vulnerabilities text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX persons_case ON persons (case_id);

-- The case's timeline as read back from the public status stream, in stream order.
CREATE TABLE status_timeline (
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    case_id      uuid        NOT NULL,
    status       text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    place        jsonb,
    movement_id  text,
    reason_code  text,
    reason       text,
    -- Consumed in partition order and one partition holds a case: insertion order is stream order.
    seq          bigserial   NOT NULL,
    PRIMARY KEY (event_source, event_id)
);
CREATE INDEX status_timeline_case ON status_timeline (case_id, seq);

CREATE TABLE pii_access_log (
    id          bigserial PRIMARY KEY,
    accessed_at timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    purpose     text NOT NULL,
    case_id     uuid NOT NULL
);
