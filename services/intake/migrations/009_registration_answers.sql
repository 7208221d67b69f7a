-- What every registration under a registration key answered, not only a bulk import's row: POST
-- /cases repeated under its key is answered its first answer too, flags included (issue 17). Ids
-- only, written in the registration's transaction, dropped by an erasure with the key.
-- ``imported``: whether an import gave that answer. An import answers a key it did not register
-- itself "exists" (the row was never imported, so there is no import's answer to repeat).
ALTER TABLE import_answers RENAME TO registration_answers;
ALTER TABLE registration_answers ADD COLUMN imported boolean NOT NULL DEFAULT true;
ALTER TABLE registration_answers ALTER COLUMN imported DROP DEFAULT;
