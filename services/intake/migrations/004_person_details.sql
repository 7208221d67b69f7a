ALTER TABLE persons ADD COLUMN given_names_cyrillic text;
ALTER TABLE persons ADD COLUMN surname_cyrillic text;
ALTER TABLE persons ADD COLUMN phone text;
ALTER TABLE persons ADD COLUMN proof_of_citizenship jsonb;
