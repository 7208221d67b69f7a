-- An update or an erasure drops a case's keys (DELETE ... WHERE case_id): without this index each
-- one reads every key of every case, a cost that grows with each bulk import (three keys a person).
CREATE INDEX person_keys_case ON person_keys (case_id);
