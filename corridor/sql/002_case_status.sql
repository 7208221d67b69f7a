-- What this service knows of each case's public status: the last status it published, or learnt
-- from an event it consumed. A status change is published only if it may follow this one.
CREATE TABLE case_status_known (
    case_id    uuid PRIMARY KEY,
    status     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Status changes a service was about to publish and did not, because they may not follow the
-- case's last status: each one is a bug, kept for diagnosis and counted in the tests.
CREATE TABLE illegal_status_changes (
    id          bigserial PRIMARY KEY,
    case_id     uuid        NOT NULL,
    from_status text,
    to_status   text        NOT NULL,
    source      text        NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now()
);
