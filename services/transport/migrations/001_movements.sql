-- Personal data kept here is what a manifest needs (purpose: border clearance), nothing more.
CREATE TABLE cases (
    case_id             uuid PRIMARY KEY,
    route_id            text        NOT NULL,
    planned_travel_date date        NOT NULL,
    registered_at       timestamptz NOT NULL,
    passengers          jsonb       NOT NULL
);

CREATE TABLE decisions (
    case_id  uuid PRIMARY KEY,
    version  int  NOT NULL,
    outcome  text NOT NULL,
    priority int  NOT NULL
);

CREATE TABLE movements (
    movement_id    text PRIMARY KEY,
    route_id       text        NOT NULL,
    departure_date date        NOT NULL,
    status         text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vehicles (
    movement_id      text NOT NULL REFERENCES movements (movement_id),
    vehicle_id       text NOT NULL,
    capacity         int  NOT NULL CHECK (capacity > 0),
    manifest_id      uuid NOT NULL,
    manifest_revision int NOT NULL DEFAULT 1,
    departed_at      timestamptz,
    PRIMARY KEY (movement_id, vehicle_id)
);

-- A case is on at most one movement at a time.
CREATE TABLE assignments (
    case_id     uuid PRIMARY KEY,
    movement_id text NOT NULL,
    vehicle_id  text NOT NULL,
    seats       int  NOT NULL,
    state       text NOT NULL,
    explanation text NOT NULL,
    FOREIGN KEY (movement_id, vehicle_id) REFERENCES vehicles (movement_id, vehicle_id)
);

CREATE TABLE crossings (
    case_id       uuid NOT NULL,
    checkpoint_id text NOT NULL,
    cleared       boolean NOT NULL,
    decided_at    timestamptz NOT NULL,
    PRIMARY KEY (case_id, checkpoint_id)
);
