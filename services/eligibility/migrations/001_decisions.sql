-- Only what the rules need: no names. Document facts are kept so a later input (new document,
-- requirement change) can re-evaluate without asking intake again.
CREATE TABLE cases (
    case_id             uuid PRIMARY KEY,
    route_id            text        NOT NULL,
    facts               jsonb       NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE decisions (
    case_id    uuid        NOT NULL REFERENCES cases (case_id),
    version    int         NOT NULL,
    outcome    text        NOT NULL,
    priority   int         NOT NULL,
    rules      jsonb       NOT NULL,
    decided_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, version)
);
