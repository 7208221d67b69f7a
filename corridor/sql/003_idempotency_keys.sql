-- Answers to commands sent with an Idempotency-Key (corridor.idempotency): written in the command's
-- own transaction, so a key is recorded if and only if the command's effect is. A repeat of the
-- key is answered from here; after expires_at the key may be used again (and is swept).
CREATE TABLE idempotency_keys (
    owner        text        NOT NULL,  -- the caller: mission and token subject
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,  -- sha256 of method, path, query and canonical JSON body
    -- The answer: null only inside the command's transaction, before it has one (never committed).
    status       int,
    media_type   text,
    body         bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (owner, key)
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
