-- Rampart webhooks in: the inbox of providers' events, the delivery ids remembered for dedup, and
-- the rail state the events build (payments by charge reference, mints and payouts by key).
-- Self-contained: nothing here refers to another schema.
-- depends: 0005.ledger-limits

CREATE SCHEMA IF NOT EXISTS webhooks;

-- Every verified delivery, recorded before it is acknowledged, kept (the raw body is what the
-- signature covered). queued_at is set when a sender claims the row to queue it (and cleared if
-- the send fails); applied_at once the queue consumer applied it, in the same transaction as
-- the rail state it changed.
CREATE TABLE webhooks.inbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    webhook_id  text NOT NULL CHECK (length(webhook_id) BETWEEN 1 AND 256),
    event_type  text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 64),
    body        bytea NOT NULL CHECK (length(body) <= 262144),
    received_at timestamptz NOT NULL DEFAULT now(),
    queued_at   timestamptz,
    requeues    integer NOT NULL DEFAULT 0 CHECK (requeues >= 0),
    applied_at  timestamptz,
    outcome     text,
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- failed applications
    last_error  text,
    CONSTRAINT inbox_outcome CHECK ((applied_at IS NULL) = (outcome IS NULL))
);

CREATE INDEX inbox_delivery ON webhooks.inbox (provider, webhook_id);
-- What the requeue schedule scans: only the rows not applied yet.
CREATE INDEX inbox_unapplied ON webhooks.inbox (received_at) WHERE applied_at IS NULL;

-- A delivery id seen within the dedup horizon (72 h, pruned by the requeue schedule). The
-- primary key is the dedup: concurrent deliveries of one id insert one row, the others wait for
-- it and find it.
CREATE TABLE webhooks.deliveries (
    provider    text NOT NULL,
    webhook_id  text NOT NULL,
    -- deferred: the delivery row goes in first (it is the lock), its inbox row next
    inbox_id    bigint NOT NULL REFERENCES webhooks.inbox (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, webhook_id)
);

CREATE INDEX deliveries_received ON webhooks.deliveries (received_at);

CREATE SCHEMA IF NOT EXISTS rails;

-- Payments a provider reported received against a charge (reference: the ramp id).
CREATE TABLE rails.payments (
    provider     text NOT NULL,
    payment_id   text NOT NULL CHECK (length(payment_id) BETWEEN 1 AND 256),
    charge_id    text NOT NULL,
    reference    text NOT NULL,
    amount       numeric(78, 18) NOT NULL CHECK (amount > 0),
    currency     text NOT NULL,
    payer_tax_id text NOT NULL,
    paid_at      timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('accepted', 'refunding', 'refunded')),
    refund_id    text,
    refunded_at  timestamptz,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, payment_id),
    CONSTRAINT payments_refund CHECK ((status = 'refunded') = (refund_id IS NOT NULL AND refunded_at IS NOT NULL))
);

CREATE INDEX payments_reference ON rails.payments (provider, reference);

-- Mints (BRLA to an address) and payouts (BRLA burnt, BRL to a PIX key) by our idempotency key,
-- as the provider reported them.
CREATE TABLE rails.operations (
    provider    text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('mint', 'payout')),
    key         text NOT NULL CHECK (length(key) BETWEEN 1 AND 256),
    status      text NOT NULL CHECK (status IN ('completed', 'failed')),
    amount      numeric(78, 18) NOT NULL CHECK (amount > 0),
    currency    text NOT NULL,
    destination text NOT NULL,
    tx_hash     text,
    reason      text,
    event_id    text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, kind, key),
    CONSTRAINT operations_outcome CHECK ((status = 'failed') = (reason IS NOT NULL))
);
