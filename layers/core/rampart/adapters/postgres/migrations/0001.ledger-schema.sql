-- Rampart ledger: schema.
-- Amounts are integer base units in NUMERIC(78,0) (any uint256 fits). Entries are immutable and
-- hash-chained per account. Accounts carry their chain head (last_sequence, last_hash) so a
-- transfer extends the chain under the account lock it already holds.

CREATE SCHEMA IF NOT EXISTS ledger;

CREATE TABLE ledger.assets (
    code  text PRIMARY KEY CHECK (code ~ '^[A-Z]{3,5}$'),
    scale smallint NOT NULL CHECK (scale BETWEEN 0 AND 18)
);

INSERT INTO ledger.assets (code, scale) VALUES
    ('USD', 2), ('EUR', 2), ('BRL', 2), ('ARS', 2),
    ('USDC', 7), ('USDT', 7), ('EURC', 7), ('XLM', 7),
    ('DOT', 10), ('PEN', 12), ('BRLA', 18), ('ETH', 18);

CREATE FUNCTION ledger.genesis_hash() RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;

CREATE TABLE ledger.accounts (
    id                             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id                       text NOT NULL,
    currency                       text NOT NULL REFERENCES ledger.assets (code),
    name                           text,
    is_system                      boolean NOT NULL DEFAULT false,
    debits_must_not_exceed_credits boolean NOT NULL DEFAULT true,
    debits_pending                 numeric(78, 0) NOT NULL DEFAULT 0,
    debits_posted                  numeric(78, 0) NOT NULL DEFAULT 0,
    credits_pending                numeric(78, 0) NOT NULL DEFAULT 0,
    credits_posted                 numeric(78, 0) NOT NULL DEFAULT 0,
    version                        bigint NOT NULL DEFAULT 0,
    last_sequence                  bigint NOT NULL DEFAULT 0,
    last_hash                      bytea NOT NULL DEFAULT ledger.genesis_hash(),
    created_at                     timestamptz NOT NULL DEFAULT now(),
    -- The backstop of the rules the functions enforce with typed errors: balances never negative,
    -- the balance rule, system accounts named. One CHECK per hot table on purpose: PostgreSQL
    -- prepares every CHECK of a table on each INSERT/UPDATE statement, and one combined constraint
    -- costs measurably less than many (~15% of a transfer's server time across the three tables).
    CONSTRAINT accounts_rules CHECK (
        debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0
        AND (NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted)
        AND (NOT is_system OR name IS NOT NULL))
) WITH (fillfactor = 50);  -- room for HOT updates: balances change on every transfer

CREATE INDEX accounts_owner ON ledger.accounts (owner_id, id);
CREATE UNIQUE INDEX accounts_system_per_currency ON ledger.accounts (currency, name) WHERE is_system;

-- Transfers. A refused transfer is kept as status 'failed' with its error: the failure is pinned
-- to its reference, so a retry with the same reference gets the same answer.
-- No foreign keys to accounts on the hot tables: the ledger functions validate ids under the
-- account locks, and a failed transfer may name an account that does not exist.
CREATE TABLE ledger.transfers (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id          text NOT NULL,
    reference         text NOT NULL,
    debit_account_id  bigint NOT NULL,
    credit_account_id bigint NOT NULL,
    currency          text NOT NULL,
    amount            numeric(78, 0) NOT NULL,  -- posted amount
    hold_amount       numeric(78, 0),           -- reserved by a hold
    timeout_seconds   integer,
    status            text NOT NULL,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz,
    finalized_at      timestamptz,
    CONSTRAINT transfers_reference_per_owner UNIQUE (owner_id, reference),
    CONSTRAINT transfers_rules CHECK (
        length(reference) BETWEEN 1 AND 200
        AND status IN ('posted', 'pending', 'voided', 'expired', 'failed')
        AND (status = 'failed') = (error IS NOT NULL)
        AND amount >= 0
        AND (hold_amount IS NULL) = (timeout_seconds IS NULL)
        AND (hold_amount IS NULL OR (hold_amount > 0 AND timeout_seconds > 0 AND amount <= hold_amount)))
);

CREATE INDEX transfers_debit ON ledger.transfers (debit_account_id, id);
CREATE INDEX transfers_credit ON ledger.transfers (credit_account_id, id);
CREATE INDEX transfers_owner ON ledger.transfers (owner_id, id);
-- Open holds only: the sweep's queue and the per-account expiry check.
CREATE INDEX transfers_open_holds ON ledger.transfers (expires_at) WHERE status = 'pending';
CREATE INDEX transfers_open_holds_debit ON ledger.transfers (debit_account_id) WHERE status = 'pending';

-- Entries: posted movements only, one per side, immutable, chained per account.
CREATE TABLE ledger.entries (
    account_id    bigint NOT NULL,
    sequence      bigint NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    transfer_id   bigint NOT NULL,
    direction     text NOT NULL,
    amount        numeric(78, 0) NOT NULL,
    balance_after numeric(78, 0) NOT NULL,  -- posted balance (credits - debits) after this entry
    created_at    timestamptz NOT NULL DEFAULT now(),
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL,
    PRIMARY KEY (account_id, sequence),
    CONSTRAINT entries_rules CHECK (direction IN ('debit', 'credit') AND amount > 0)
);

CREATE FUNCTION ledger.forbid_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger %: % is not allowed (a correction is a new transfer)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON ledger.entries
    FOR EACH ROW EXECUTE FUNCTION ledger.forbid_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON ledger.entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.forbid_change();
CREATE TRIGGER transfers_no_delete BEFORE DELETE ON ledger.transfers
    FOR EACH ROW EXECUTE FUNCTION ledger.forbid_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON ledger.transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.forbid_change();

-- System accounts (world, fees, settlement) for every asset; they may go negative.
CREATE FUNCTION ledger.ensure_system_accounts() RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO ledger.accounts (owner_id, currency, name, is_system, debits_must_not_exceed_credits)
    SELECT 'system', a.code, n.name, true, false
    FROM ledger.assets a CROSS JOIN (VALUES ('world'), ('fees'), ('settlement')) AS n (name)
    ON CONFLICT (currency, name) WHERE is_system DO NOTHING;
$$;

DO $$ BEGIN PERFORM ledger.ensure_system_accounts(); END $$;
