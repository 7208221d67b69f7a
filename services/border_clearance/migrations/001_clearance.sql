-- Clearance records belong to the mission of this checkpoint's country: full records stay here,
-- only pseudonymous decisions leave.
CREATE TABLE manifests (
    movement_id  text NOT NULL,
    vehicle_id   text NOT NULL,
    manifest_id  uuid NOT NULL,
    revision     int  NOT NULL,
    route_id     text NOT NULL,
    departure_date date NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (movement_id, vehicle_id)
);

CREATE TABLE expected_passengers (
    movement_id     text NOT NULL,
    vehicle_id      text NOT NULL,
    case_id         uuid NOT NULL,
    person_id       uuid NOT NULL,
    surname         text NOT NULL,
    given_names     text NOT NULL,
    birth_date      date NOT NULL,
    sex             text NOT NULL,
    nationality     text NOT NULL,
    document_type   text NOT NULL,
    document_number text NOT NULL,
    PRIMARY KEY (movement_id, vehicle_id, person_id),
    FOREIGN KEY (movement_id, vehicle_id) REFERENCES manifests (movement_id, vehicle_id) ON DELETE CASCADE
);

-- How a case reaches this post: its vehicle departed (first checkpoint) or it was cleared at the
-- checkpoint before this one. Kept apart from manifests because the topics are not ordered
-- relative to each other.
CREATE TABLE departures (
    case_id     uuid PRIMARY KEY,
    movement_id text NOT NULL,
    vehicle_id  text NOT NULL
);

CREATE TABLE upstream_clearances (
    case_id       uuid NOT NULL,
    checkpoint_id text NOT NULL,
    PRIMARY KEY (case_id, checkpoint_id)
);

CREATE TABLE decisions (
    case_id     uuid NOT NULL,
    person_id   uuid NOT NULL,
    movement_id text NOT NULL,
    vehicle_id  text NOT NULL,
    cleared     boolean NOT NULL,
    reason_code text,
    reason      text,
    officer     text NOT NULL,
    decided_at  timestamptz NOT NULL,
    PRIMARY KEY (case_id, person_id)
);
