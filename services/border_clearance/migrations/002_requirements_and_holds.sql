CREATE TABLE requirements (
    requirement_id uuid PRIMARY KEY,
    code           text NOT NULL,
    description    text NOT NULL,
    evidence_kind  text NOT NULL,
    valid_hours    int  NOT NULL,
    effective_from date NOT NULL,
    published_by   text NOT NULL,
    published_at   timestamptz NOT NULL,
    lifted_at      timestamptz
);

-- People this post must not clear (an alert, a court order): matched on the travel document.
CREATE TABLE hold_list (
    document_number text PRIMARY KEY,
    reason_code     text NOT NULL,
    reason          text NOT NULL,
    added_by        text NOT NULL,
    added_at        timestamptz NOT NULL DEFAULT now()
);

-- What the officer's document check read, kept with the decision.
ALTER TABLE decisions ADD COLUMN document_check text;
