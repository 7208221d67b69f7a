-- Certificates of return are single use: keyed hashes of those that carried someone home.
CREATE TABLE used_certificates (
    document_ref text PRIMARY KEY,
    case_id      uuid NOT NULL,
    used_at      timestamptz NOT NULL
);

-- A supervisor's decision over the rules, with a written reason; kept, never edited.
CREATE TABLE overrides (
    id          bigserial PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES cases (case_id),
    outcome     text NOT NULL,
    reason      text NOT NULL,
    supervisor  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    revoked_by  text
);
CREATE INDEX overrides_case ON overrides (case_id);
