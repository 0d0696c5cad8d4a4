-- Ramps II: quotes, ramps and the ephemerals they claim (API.md, "Ramps"). Amounts are integer
-- base units at the asset's ledger scale, as in the ledger; the corridor's key names the rest
-- (rampart.ramps.models.CORRIDORS). Times come from the database's clock: a quote's expiry, a
-- ramp's start deadline and the conditions that check them are all now() of this server.
-- depends: 0008.roles

CREATE SCHEMA IF NOT EXISTS ramps;

-- A quote is immutable once written but for its consumption (the role may update only those
-- columns): priced once, consumed exactly once by the conditional update of a registration.
CREATE TABLE ramps.quotes (
    id           text PRIMARY KEY CHECK (id ~ '^qt_[0-9a-f]{32}$'),
    owner_id     text NOT NULL,
    partner_id   text,
    corridor     text NOT NULL CHECK (corridor ~ '^[a-z_]{1,32}$'),
    input_units  numeric(78, 0) NOT NULL CHECK (input_units > 0),
    output_units numeric(78, 0) NOT NULL CHECK (output_units > 0),
    fee_network  numeric(78, 0) NOT NULL CHECK (fee_network >= 0),
    fee_anchor   numeric(78, 0) NOT NULL CHECK (fee_anchor >= 0),
    fee_platform numeric(78, 0) NOT NULL CHECK (fee_platform >= 0),
    fee_partner  numeric(78, 0) NOT NULL CHECK (fee_partner >= 0),
    rate         numeric NOT NULL CHECK (rate > 0),
    snapshot     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    consumed_at  timestamptz,
    consumed_by  text,
    CHECK ((consumed_at IS NULL) = (consumed_by IS NULL))
);
CREATE INDEX quotes_unconsumed_expiry ON ramps.quotes (expires_at) WHERE consumed_at IS NULL;

CREATE TABLE ramps.ramps (
    id                   text PRIMARY KEY CHECK (id ~ '^rmp_[0-9a-f]{32}$'),
    seq                  bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    owner_id             text NOT NULL,
    quote_id             text NOT NULL UNIQUE REFERENCES ramps.quotes (id),
    status               text NOT NULL CHECK (status IN
                             ('initial', 'running', 'paused', 'completed', 'failed', 'cancelled', 'expired')),
    phase                text NOT NULL CHECK (phase ~ '^[a-z_]{1,32}$'),
    destination          jsonb NOT NULL,
    payer                jsonb,
    signing_accounts     jsonb NOT NULL,
    unsigned_txs         jsonb NOT NULL,
    presigned_txs        jsonb NOT NULL DEFAULT '{}',
    charge_id            text,
    payment_instructions jsonb,
    refund               jsonb,
    start_deadline       timestamptz NOT NULL,
    execution_arn        text,
    task_token           text,
    task_phase           text,
    history              jsonb NOT NULL,
    errors               jsonb NOT NULL DEFAULT '[]',
    transactions         jsonb NOT NULL DEFAULT '{}',
    started_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ramps_by_owner ON ramps.ramps (owner_id, seq DESC);
CREATE INDEX ramps_by_status ON ramps.ramps (status, seq DESC);
CREATE INDEX ramps_unstarted_deadline ON ramps.ramps (start_deadline) WHERE status = 'initial';

-- An ephemeral belongs to at most one unfinished ramp: the partial unique index is the lock two
-- concurrent registrations meet (the second fails, its transaction — quote included — rolls back).
CREATE TABLE ramps.ephemerals (
    ramp_id text NOT NULL REFERENCES ramps.ramps (id),
    network text NOT NULL,
    address text NOT NULL,  -- EVM: lower-case
    active  boolean NOT NULL DEFAULT true,
    PRIMARY KEY (ramp_id, network, address)
);
CREATE UNIQUE INDEX ephemerals_active ON ramps.ephemerals (network, address) WHERE active;

DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['rampart_ramps', 'rampart_ramp_worker', 'rampart_ramp_sweep'] LOOP
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
                EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT', r);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database on this server
        END;
    END LOOP;
END
$roles$;

ALTER DEFAULT PRIVILEGES IN SCHEMA ramps REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- ramps (the API): prices and keeps quotes (a partner's markup read), registers, signs, starts,
-- cancels and reads ramps; claims and releases ephemerals.
GRANT USAGE ON SCHEMA ramps, auth TO rampart_ramps;
GRANT SELECT (id, markup_bps) ON auth.partners TO rampart_ramps;
GRANT SELECT, INSERT ON ramps.quotes TO rampart_ramps;
GRANT UPDATE (consumed_at, consumed_by) ON ramps.quotes TO rampart_ramps;
GRANT SELECT, INSERT ON ramps.ramps TO rampart_ramps;
GRANT UPDATE (status, phase, presigned_txs, charge_id, payment_instructions, execution_arn, history, started_at,
    updated_at) ON ramps.ramps TO rampart_ramps;
GRANT SELECT, INSERT ON ramps.ephemerals TO rampart_ramps;
GRANT UPDATE (active) ON ramps.ephemerals TO rampart_ramps;

-- ramp_worker: the execution's tasks (Ramps II: it keeps the waiting task's token).
GRANT USAGE ON SCHEMA ramps TO rampart_ramp_worker;
GRANT SELECT ON ramps.quotes, ramps.ramps TO rampart_ramp_worker;
GRANT UPDATE (task_token, task_phase, updated_at) ON ramps.ramps TO rampart_ramp_worker;

-- ramp_sweep: expires unstarted ramps past their deadline, deletes long-expired unused quotes.
GRANT USAGE ON SCHEMA ramps TO rampart_ramp_sweep;
GRANT SELECT ON ramps.quotes, ramps.ramps, ramps.ephemerals TO rampart_ramp_sweep;
GRANT UPDATE (status, history, updated_at) ON ramps.ramps TO rampart_ramp_sweep;
GRANT UPDATE (active) ON ramps.ephemerals TO rampart_ramp_sweep;
GRANT DELETE ON ramps.quotes TO rampart_ramp_sweep;
