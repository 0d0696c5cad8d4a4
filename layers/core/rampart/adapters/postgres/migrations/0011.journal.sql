-- The financial-operations journal (ARCHITECTURE.md, "Journal, then act"): one row per external
-- side effect of a ramp, keyed ramp:phase:step, claimed before the act and settled after it.
-- A claim holds the row until lease_until: a worker that timed out may still be acting, so a
-- second claimant takes over only after the lease, and then looks the external id up first.
-- depends: 0009.ramps

CREATE SCHEMA IF NOT EXISTS journal;

CREATE TABLE journal.operations (
    key          text PRIMARY KEY CHECK (length(key) BETWEEN 5 AND 200),
    ramp_id      text NOT NULL CHECK (length(ramp_id) BETWEEN 1 AND 64),
    kind         text NOT NULL CHECK (kind ~ '^[a-z_]{1,32}$'),
    request      jsonb NOT NULL,
    request_hash bytea NOT NULL CHECK (length(request_hash) = 32),
    status       text NOT NULL CHECK (status IN ('not_started', 'submitted', 'confirmed', 'failed', 'unknown')),
    external_id  text CHECK (length(external_id) <= 200),
    evidence     jsonb,  -- what was sent (e.g. the signed raw transaction), to look up or send again
    claim_id     uuid NOT NULL,
    attempts     integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz NOT NULL,
    outcome      jsonb,
    error        text CHECK (length(error) <= 2000),
    settled_at   timestamptz,
    CHECK ((status IN ('confirmed', 'failed')) = (settled_at IS NOT NULL))
);
CREATE INDEX operations_by_ramp ON journal.operations (ramp_id);

-- The ledger mirror: every address whose balance the ledger mirrors (an ephemeral, a platform
-- account) has one ledger account per asset (owner 'platform', no overdraft, as on the chain);
-- the world outside is the asset's 'world' system account. Reconciliation reads this list.
CREATE TABLE journal.mirrors (
    network    text NOT NULL CHECK (network ~ '^[a-z]{1,16}$'),
    address    text NOT NULL CHECK (length(address) BETWEEN 1 AND 100),  -- EVM: lower-case
    asset      text NOT NULL REFERENCES ledger.assets (code),
    kind       text NOT NULL CHECK (kind IN ('ephemeral', 'user', 'platform')),
    account_id bigint NOT NULL UNIQUE REFERENCES ledger.accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (network, address, asset)
);

ALTER DEFAULT PRIVILEGES IN SCHEMA journal REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- ramp_worker: claims and settles its ramps' operations (Ramps III).
GRANT USAGE ON SCHEMA journal TO rampart_ramp_worker;
GRANT SELECT, INSERT ON journal.operations TO rampart_ramp_worker;
GRANT SELECT, INSERT ON journal.mirrors TO rampart_ramp_worker;
-- the mirror's ledger side: its accounts (never with balances) and transfers through the ledger's function
GRANT USAGE ON SCHEMA ledger TO rampart_ramp_worker;
GRANT SELECT ON ledger.assets, ledger.accounts, ledger.transfers TO rampart_ramp_worker;
GRANT INSERT (owner_id, currency, name, is_system, debits_must_not_exceed_credits) ON ledger.accounts
    TO rampart_ramp_worker;
GRANT USAGE ON SEQUENCE ledger.accounts_id_seq TO rampart_ramp_worker;
GRANT EXECUTE ON FUNCTION ledger.genesis_hash(), ledger.create_transfer, ledger.outcome_of TO rampart_ramp_worker;
GRANT UPDATE (status, external_id, evidence, claim_id, attempts, claimed_at, lease_until, outcome, error, settled_at)
    ON journal.operations TO rampart_ramp_worker;
