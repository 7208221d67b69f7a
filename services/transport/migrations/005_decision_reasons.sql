-- A decision may reach transport before the case's registration (another topic): it is kept with
-- what the status stream will say, and applied when the registration arrives.
ALTER TABLE decisions ADD COLUMN reason_code text;
ALTER TABLE decisions ADD COLUMN reason text;
ALTER TABLE decisions ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;
ALTER TABLE decisions ADD COLUMN decided_at timestamptz;
