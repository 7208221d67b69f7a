-- A requirement may end: the last travel date it applies to (none: every later date until lifted).
ALTER TABLE requirements ADD COLUMN effective_until date;
