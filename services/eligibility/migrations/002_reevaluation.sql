ALTER TABLE cases ADD COLUMN withdrawn_at timestamptz;
-- Once its vehicle has left, a case's decision is frozen: changes then are the border's to make.
ALTER TABLE cases ADD COLUMN departed_at timestamptz;

CREATE TABLE evidence (
    case_id   uuid NOT NULL,
    person_id uuid NOT NULL,
    kind      text NOT NULL,
    result    text NOT NULL,
    taken_at  timestamptz NOT NULL
);
CREATE INDEX evidence_case ON evidence (case_id);

CREATE TABLE requirements (
    requirement_id uuid PRIMARY KEY,
    checkpoint_id  text NOT NULL,
    country        text NOT NULL,
    post           text NOT NULL,
    code           text NOT NULL,
    description    text NOT NULL,
    evidence_kind  text NOT NULL,
    valid_hours    int  NOT NULL,
    effective_from date NOT NULL,
    lifted_at      timestamptz
);
