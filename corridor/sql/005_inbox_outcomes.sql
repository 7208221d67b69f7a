-- What applying an event produced, for a repeat of it to be answered that (issue 17): a mission's
-- report sent again over HTTP is answered the id of the status change its first delivery
-- published. Written in the transaction that applied the event, with its inbox row; null where
-- nothing was produced, or the event was applied before outcomes were kept.
ALTER TABLE inbox ADD COLUMN outcome_id text;
