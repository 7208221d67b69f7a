-- Keys that recognise the same person across registrations (document; name + birth date in either
-- script). Flags are for a caseworker to resolve; nothing is merged automatically.
CREATE TABLE person_keys (
    person_id uuid NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    case_id   uuid NOT NULL REFERENCES cases (case_id),
    kind      text NOT NULL,
    key       text NOT NULL,
    PRIMARY KEY (person_id, kind, key)
);
CREATE INDEX person_keys_key ON person_keys (kind, key);

CREATE TABLE duplicate_flags (
    flag_id         bigserial PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES cases (case_id),
    person_id       uuid NOT NULL,
    other_case_id   uuid NOT NULL REFERENCES cases (case_id),
    other_person_id uuid NOT NULL,
    basis           text NOT NULL,
    status          text NOT NULL DEFAULT 'open',
    flagged_at      timestamptz NOT NULL DEFAULT now(),
    resolved_by     text,
    resolved_at     timestamptz,
    resolution_note text,
    UNIQUE (person_id, other_person_id)
);
CREATE INDEX duplicate_flags_open ON duplicate_flags (status) WHERE status = 'open';

ALTER TABLE cases ADD COLUMN version int NOT NULL DEFAULT 1;
