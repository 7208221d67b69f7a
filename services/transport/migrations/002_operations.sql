ALTER TABLE cases ADD COLUMN needs_escort boolean NOT NULL DEFAULT false;
ALTER TABLE vehicles ADD COLUMN escort_seat boolean NOT NULL DEFAULT false;

CREATE TABLE vehicle_progress (
    movement_id   text NOT NULL,
    vehicle_id    text NOT NULL,
    checkpoint_id text NOT NULL,
    stage         text NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (movement_id, vehicle_id, checkpoint_id, stage)
);

-- Every export of a manifest (personal data) is recorded: who, why, when, which.
CREATE TABLE pii_access_log (
    id          bigserial PRIMARY KEY,
    accessed_at timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    purpose     text NOT NULL,
    movement_id text NOT NULL,
    vehicle_id  text NOT NULL,
    format      text NOT NULL
);
