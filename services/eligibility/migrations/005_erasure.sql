-- A case whose people's personal data was erased (intake's PersonalDataErased): no decision is
-- taken on it again, and what here speaks of its people (health evidence, vulnerabilities, the
-- rules' and overrides' texts) is gone. Outcomes and dates stay for the statistics.
ALTER TABLE cases ADD COLUMN erased_at timestamptz;
