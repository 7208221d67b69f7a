-- A requirement applies from a travel date on: re-evaluate only the cases travelling from then.
ALTER TABLE cases ADD COLUMN planned_travel_date date;
UPDATE cases SET planned_travel_date = (facts->>'planned_travel_date')::date;
CREATE INDEX cases_route_travel ON cases (route_id, planned_travel_date)
    WHERE departed_at IS NULL AND withdrawn_at IS NULL;
