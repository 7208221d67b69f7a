-- What each registration under a registration key answered (a bulk import's row or POST /cases):
-- the flags it raised (none: "created"), so that the same registration sent again is answered
-- what the first one answered (issue 17), not a bare "exists". Written in the registration's own
-- transaction. Ids only: the row is found by the case's registration key, which an erasure clears
-- (and drops this row with it).
-- ``imported``: whether an import gave that answer. An import answers a key it did not register
-- itself "exists" (the row was never imported, so there is no import's answer to repeat).
CREATE TABLE registration_answers (
    case_id  uuid PRIMARY KEY REFERENCES cases (case_id),
    flag_ids bigint[] NOT NULL,
    imported boolean NOT NULL
);
