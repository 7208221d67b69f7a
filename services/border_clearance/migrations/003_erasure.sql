-- The people of a case whose personal data was erased (transport's PassengerDataErased): names,
-- birth day and month, document numbers and the officers' notes about them go; the decisions
-- (cleared or refused, when, by whom) stay for the statistics and the record of the crossing.
CREATE TABLE erasures (
    case_id   uuid PRIMARY KEY,
    erased_at timestamptz NOT NULL
);
