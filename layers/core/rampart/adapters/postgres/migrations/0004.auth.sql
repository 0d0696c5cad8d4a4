-- Rampart auth: users, refresh-token families, partners.
-- No secret is stored in clear: passwords are argon2id hashes (a CHECK insists on it), refresh
-- tokens and partner API keys are SHA-256 digests of high-entropy random strings.
-- depends: 0003.ledger-verify

CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE auth.users (
    id            text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          text NOT NULL CHECK (role IN ('user', 'business', 'lender', 'partner', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- One account per address, whatever its case.
CREATE UNIQUE INDEX users_email_ci ON auth.users (lower(email));

-- A family is one login's chain of refresh tokens. Revoking the family (logout, or a token
-- used twice) is one row update, and it is the row every rotation locks first, so a rotation
-- racing a revocation can never leave a live token behind.
CREATE TABLE auth.refresh_families (
    id         text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    revoked_at timestamptz,
    revoked_because text CHECK (revoked_because IN ('logout', 'reuse', 'password-change')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refresh_families_revocation CHECK ((revoked_at IS NULL) = (revoked_because IS NULL))
);

CREATE INDEX refresh_families_user ON auth.refresh_families (user_id) WHERE revoked_at IS NULL;

CREATE TABLE auth.refresh_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),   -- sha256 of the token
    family_id  text NOT NULL REFERENCES auth.refresh_families (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    used_at    timestamptz,                                          -- rotated: never valid again
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_family ON auth.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON auth.refresh_tokens (expires_at);

CREATE TABLE auth.partners (
    id             text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    markup_bps     integer NOT NULL CHECK (markup_bps BETWEEN 0 AND 10000),
    api_key_hash   bytea NOT NULL UNIQUE CHECK (length(api_key_hash) = 32),  -- sha256 of the key
    api_key_prefix text NOT NULL CHECK (length(api_key_prefix) BETWEEN 1 AND 16),  -- for operators
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Rotate a refresh token in one round trip. Outcomes:
--   ok       the old token is now used, the new one (same family) is live; user_id/role returned
--   unknown  no such token
--   revoked  the family was revoked (logout or earlier reuse)
--   reused   the token was already used: the whole family is revoked now
--   expired  the token's lifetime is over
-- Locks the family row first, then the token row: concurrent rotations of one family, and a
-- revocation racing them, serialize on the family, so exactly one use of a token wins.
CREATE FUNCTION auth.rotate_refresh_token(p_old bytea, p_new bytea, p_ttl_seconds integer)
    RETURNS TABLE (outcome text, user_id text, role text, family_id text)
    LANGUAGE plpgsql AS $$
DECLARE
    v_family text;
    v_revoked timestamptz;
    v_token auth.refresh_tokens%ROWTYPE;
    v_role text;
BEGIN
    SELECT t.family_id INTO v_family FROM auth.refresh_tokens t WHERE t.token_hash = p_old;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    SELECT f.revoked_at INTO v_revoked FROM auth.refresh_families f WHERE f.id = v_family FOR UPDATE;
    SELECT * INTO v_token FROM auth.refresh_tokens t WHERE t.token_hash = p_old FOR UPDATE;
    IF v_revoked IS NOT NULL THEN
        RETURN QUERY SELECT 'revoked'::text, v_token.user_id, NULL::text, v_family;
        RETURN;
    END IF;
    IF v_token.used_at IS NOT NULL THEN
        UPDATE auth.refresh_families SET revoked_at = now(), revoked_because = 'reuse' WHERE id = v_family;
        RETURN QUERY SELECT 'reused'::text, v_token.user_id, NULL::text, v_family;
        RETURN;
    END IF;
    IF v_token.expires_at <= now() THEN
        RETURN QUERY SELECT 'expired'::text, v_token.user_id, NULL::text, v_family;
        RETURN;
    END IF;
    SELECT u.role INTO v_role FROM auth.users u WHERE u.id = v_token.user_id;
    UPDATE auth.refresh_tokens SET used_at = now() WHERE token_hash = p_old;
    INSERT INTO auth.refresh_tokens (token_hash, family_id, user_id, expires_at)
        VALUES (p_new, v_family, v_token.user_id, now() + make_interval(secs => p_ttl_seconds));
    RETURN QUERY SELECT 'ok'::text, v_token.user_id, v_role, v_family;
END
$$;
