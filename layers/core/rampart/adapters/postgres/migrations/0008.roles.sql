-- Least privilege in the database (issue 12, §1): one LOGIN role per database role the manifest
-- declares (infra/manifest.py DB_ROLES, each function's db_role), with exactly the privileges
-- below. This file is the one place they are described; tests/integration/test_db_roles.py checks
-- that the roles here are the manifest's and that a role reaching beyond them is refused.
--
-- The owner (whoever runs the migrations: the cluster's master user in the cloud, the embedded
-- server's superuser in the twin and the tests) owns every schema, table and function.
-- * Money moves only through the ledger's functions: they run SECURITY DEFINER as the owner,
--   with search_path pinned, so their callers hold EXECUTE on them and SELECT on what they read,
--   and no INSERT, UPDATE or DELETE on ledger.transfers, ledger.entries or the balances.
-- * PUBLIC loses EXECUTE on every function of the ledger and auth schemas (PostgreSQL grants it
--   by default): a role calls what is granted to it here, nothing else.
-- * Roles are cluster-wide and several databases share one server in the tests: each is created
--   only if absent (and a concurrent creation from another database is not an error); the
--   GRANTs are per database. In the cloud, the migrate function sets each LOGIN role's password
--   from its secret (the RDS Proxy logs in with it); the twin's server trusts its unix socket.
-- depends: 0007.webhooks

DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY[
        'rampart_health', 'rampart_auth', 'rampart_authorizer', 'rampart_accounts', 'rampart_transfers',
        'rampart_admin', 'rampart_ledger_sweep', 'rampart_webhook_receiver', 'rampart_webhook_apply',
        'rampart_webhook_requeue'
    ] LOOP
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

-- The entry points of the ledger run as their owner, on a pinned search_path (their bodies name
-- every relation with its schema). A later migration that replaces one of them (CREATE OR REPLACE
-- resets these attributes) states SECURITY DEFINER and the search_path again: the roles test
-- checks it.
DO $definer$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         WHERE (n.nspname, p.proname) IN (
            ('ledger', 'create_transfer'), ('ledger', 'create_transfers'), ('ledger', 'finalize_hold'),
            ('ledger', 'expire_holds'), ('auth', 'rotate_refresh_token'))
    LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$definer$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ledger, auth FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA ledger, auth, webhooks, rails REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- health: one probe row of the ledger, nothing of auth or webhooks.
GRANT USAGE ON SCHEMA ledger TO rampart_health;
GRANT SELECT ON ledger.assets TO rampart_health;

-- auth: register, login, refresh (rotation through its function), logout, me.
GRANT USAGE ON SCHEMA auth TO rampart_auth;
GRANT SELECT, INSERT ON auth.users TO rampart_auth;
GRANT UPDATE (password_hash) ON auth.users TO rampart_auth;  -- a login rehashes an outdated hash
GRANT SELECT, INSERT ON auth.refresh_families TO rampart_auth;
GRANT UPDATE (revoked_at, revoked_because) ON auth.refresh_families TO rampart_auth;  -- logout
GRANT SELECT, INSERT ON auth.refresh_tokens TO rampart_auth;
GRANT EXECUTE ON FUNCTION auth.rotate_refresh_token(bytea, bytea, integer) TO rampart_auth;

-- authorizer: partners by API key digest (bearer tokens are verified without the database).
GRANT USAGE ON SCHEMA auth TO rampart_authorizer;
GRANT SELECT ON auth.partners TO rampart_authorizer;

-- accounts: open accounts (never with balances: only the named columns) and read them and
-- their entries.
GRANT USAGE ON SCHEMA ledger TO rampart_accounts;
GRANT SELECT ON ledger.assets, ledger.accounts, ledger.entries TO rampart_accounts;
GRANT INSERT (owner_id, currency, name, is_system, debits_must_not_exceed_credits) ON ledger.accounts
    TO rampart_accounts;
GRANT USAGE ON SEQUENCE ledger.accounts_id_seq TO rampart_accounts;  -- the identity of a new account
GRANT EXECUTE ON FUNCTION ledger.genesis_hash() TO rampart_accounts;   -- the default of its chain head

-- transfers: the ledger's functions, and reads of accounts, transfers and entries.
GRANT USAGE ON SCHEMA ledger TO rampart_transfers;
GRANT SELECT ON ledger.assets, ledger.accounts, ledger.transfers, ledger.entries TO rampart_transfers;
GRANT EXECUTE ON FUNCTION ledger.create_transfer, ledger.create_transfers, ledger.finalize_hold,
    ledger.outcome_of TO rampart_transfers;

-- admin: partners, and deposits from the world account (a ledger transfer).
GRANT USAGE ON SCHEMA auth, ledger TO rampart_admin;
GRANT SELECT, INSERT ON auth.partners TO rampart_admin;
GRANT SELECT ON ledger.assets, ledger.accounts, ledger.transfers TO rampart_admin;
GRANT EXECUTE ON FUNCTION ledger.create_transfer, ledger.outcome_of TO rampart_admin;

-- ledger_sweep: releases expired holds, through the ledger's function only.
GRANT USAGE ON SCHEMA ledger TO rampart_ledger_sweep;
GRANT EXECUTE ON FUNCTION ledger.expire_holds TO rampart_ledger_sweep;

-- provider_webhook: records a verified delivery (dedup by delivery id) and claims it to queue.
GRANT USAGE ON SCHEMA webhooks TO rampart_webhook_receiver;
GRANT SELECT, INSERT ON webhooks.inbox, webhooks.deliveries TO rampart_webhook_receiver;
GRANT UPDATE (queued_at) ON webhooks.inbox TO rampart_webhook_receiver;
GRANT USAGE ON SEQUENCE webhooks.inbox_id_seq TO rampart_webhook_receiver;

-- webhook_apply: applies a queued event to the rail state, once, on the inbox row's lock.
GRANT USAGE ON SCHEMA webhooks, rails TO rampart_webhook_apply;
GRANT SELECT ON webhooks.inbox TO rampart_webhook_apply;
GRANT UPDATE (applied_at, outcome, attempts, last_error, queued_at) ON webhooks.inbox TO rampart_webhook_apply;
GRANT SELECT, INSERT ON rails.payments, rails.operations TO rampart_webhook_apply;
GRANT UPDATE (status, refund_id, refunded_at) ON rails.payments TO rampart_webhook_apply;

-- webhook_requeue: queues again what was recorded but not applied; forgets old delivery ids.
GRANT USAGE ON SCHEMA webhooks TO rampart_webhook_requeue;
GRANT SELECT ON webhooks.inbox, webhooks.deliveries TO rampart_webhook_requeue;
GRANT UPDATE (queued_at, requeues) ON webhooks.inbox TO rampart_webhook_requeue;
GRANT DELETE ON webhooks.deliveries TO rampart_webhook_requeue;
