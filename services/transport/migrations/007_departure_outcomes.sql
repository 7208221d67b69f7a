-- What a departure decided, kept so that a repeat (a coordinator's retry after a lost answer) and
-- GET .../departure answer it: who left, who did not show, who got a freed seat. Case ids only.
CREATE TABLE departure_outcomes (
    movement_id   text        NOT NULL,
    vehicle_id    text        NOT NULL,
    departed      uuid[]      NOT NULL,
    no_shows      uuid[]      NOT NULL,
    seats_offered jsonb       NOT NULL,  -- [{"case_id": ..., "explanation": ...}]
    fill_freed_seats boolean  NOT NULL,  -- as asked: a repeat must ask the same
    departed_at   timestamptz NOT NULL,
    PRIMARY KEY (movement_id, vehicle_id),
    FOREIGN KEY (movement_id, vehicle_id) REFERENCES vehicles (movement_id, vehicle_id)
);
