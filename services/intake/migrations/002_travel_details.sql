ALTER TABLE persons ADD COLUMN needs_escort boolean NOT NULL DEFAULT false;
ALTER TABLE persons ADD COLUMN current_city text;

-- Medical facts: kept here and sent only on the host mission's restricted topic.
CREATE TABLE health_evidence (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (case_id),
    person_id   uuid NOT NULL REFERENCES persons (person_id),
    kind        text NOT NULL,
    result      text NOT NULL,
    taken_at    timestamptz NOT NULL,
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE withdrawals (
    case_id      uuid PRIMARY KEY REFERENCES cases (case_id),
    reason       text NOT NULL,
    recorded_by  text NOT NULL,
    withdrawn_at timestamptz NOT NULL
);
