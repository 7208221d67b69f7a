-- Planning lists a day's ready cases on every plan: eligible, not placed on a movement, not
-- withdrawn. Read through cases_route_travel, that is every case of the day, placed or not (10 ms a
-- call with 3,000 cases on one day, bench/RESULTS.md session 14). A case's placement is kept on its
-- row, so that an index can hold only the cases still to place.
ALTER TABLE cases ADD COLUMN placed boolean NOT NULL DEFAULT false;
UPDATE cases SET placed = true WHERE case_id IN (SELECT case_id FROM assignments);

-- Kept by the database itself, whatever statement seats or unseats a case: a case marked placed
-- without a seat would never be listed again, and never travel.
CREATE FUNCTION cases_seated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cases SET placed = true WHERE case_id IN (SELECT case_id FROM seated) AND NOT placed;
    RETURN NULL;
END $$;
CREATE FUNCTION cases_unseated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cases SET placed = false
    WHERE case_id IN (SELECT case_id FROM unseated)
      AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.case_id = cases.case_id);
    RETURN NULL;
END $$;
CREATE TRIGGER assignments_seat AFTER INSERT ON assignments
    REFERENCING NEW TABLE AS seated FOR EACH STATEMENT EXECUTE FUNCTION cases_seated();
CREATE TRIGGER assignments_unseat AFTER DELETE ON assignments
    REFERENCING OLD TABLE AS unseated FOR EACH STATEMENT EXECUTE FUNCTION cases_unseated();

CREATE INDEX cases_unplaced ON cases (route_id, planned_travel_date) WHERE NOT placed AND withdrawn_at IS NULL;
