-- When a case reached this post (its vehicle departed, or the post before cleared it): how long it
-- has been waiting for an officer is what operations alert on.
ALTER TABLE departures ADD COLUMN noted_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE upstream_clearances ADD COLUMN noted_at timestamptz NOT NULL DEFAULT now();
