-- The event each result was published as, so a client can match what it was answered
-- (POST /cases/{id}/health-evidence) with what it reads back. Earlier rows have none.
ALTER TABLE health_evidence ADD COLUMN event_id text;
