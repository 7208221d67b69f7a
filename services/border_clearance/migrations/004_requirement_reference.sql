-- The post's own reference for a requirement (a circular's number): publishing it again under the
-- same reference creates nothing and answers the requirement published first.
ALTER TABLE requirements ADD COLUMN reference text;
CREATE UNIQUE INDEX requirements_reference ON requirements (reference) WHERE reference IS NOT NULL;
