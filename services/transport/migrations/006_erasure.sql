-- A case whose people's personal data was erased (intake's PersonalDataErased): the passengers kept
-- for manifests lose names, birth day and month, and document numbers; the case never travels again.
ALTER TABLE cases ADD COLUMN erased_at timestamptz;
