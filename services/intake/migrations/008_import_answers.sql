-- What a bulk import answered for each case it registered: the flags it raised (none: "created"),
-- so that the same row sent again is answered what the first import answered (issue 17), not a
-- bare "exists". Written in the same transaction as the case. Ids only: the row is found by the
-- case's registration key, which an erasure clears (and drops this row with it).
CREATE TABLE import_answers (
    case_id  uuid PRIMARY KEY REFERENCES cases (case_id),
    flag_ids bigint[] NOT NULL
);
