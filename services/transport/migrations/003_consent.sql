-- Which missions the case's people consented to share their data with: a manifest never goes to
-- a checkpoint whose country is not covered, whatever else was decided.
ALTER TABLE cases ADD COLUMN consent_scope text[] NOT NULL DEFAULT '{}';
