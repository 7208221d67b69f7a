-- Transport announces the posts' decisions on the public status stream (its single home is the host
-- mission: docs/consistency.md). A decision read before the one of the post before it waits here
-- until that one is read: what the stream may say of a refusal, and whether it has said it.
ALTER TABLE crossings ADD COLUMN reason_code text;
-- Decisions recorded before this migration were announced by their posts themselves.
ALTER TABLE crossings ADD COLUMN announced boolean NOT NULL DEFAULT true;
ALTER TABLE crossings ALTER COLUMN announced SET DEFAULT false;
