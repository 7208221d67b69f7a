-- Erasure of a case's personal data (on the person's request, or when the retention period after
-- the case ended has passed): who asked, when, on what basis. The case, its statuses and dates stay
-- for the statistics; the people's names, birth dates (the year stays), documents, contacts,
-- health evidence and every free-text note about them go.
CREATE TABLE erasures (
    case_id      uuid PRIMARY KEY REFERENCES cases (case_id),
    basis        text        NOT NULL,
    requested_by text        NOT NULL,
    erased_at    timestamptz NOT NULL
);
-- The retention sweep looks for ended cases by the time of their last change.
CREATE INDEX cases_status_updated ON cases (status, updated_at);
