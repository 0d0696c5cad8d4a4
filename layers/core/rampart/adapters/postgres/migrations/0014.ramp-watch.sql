-- Ramps III: the ramp-watch schedule (rampart.ramps.watch) pauses running ramps whose execution is
-- gone, ended or silent, and reconciles every mirrored account with its chain: it reads ramps and
-- their quotes, writes only what a pause writes, and reads the mirrors and their ledger accounts.
-- It also records a payment whose webhook never came, as the webhook path would (rails.payments).
-- depends: 0013.ramp-pause

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rampart_ramp_watch') THEN
        EXECUTE 'CREATE ROLE rampart_ramp_watch LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created meanwhile by a migration of another database on this server
END
$roles$;

GRANT USAGE ON SCHEMA ramps, journal, ledger TO rampart_ramp_watch;
GRANT SELECT ON ramps.ramps, ramps.quotes TO rampart_ramp_watch;
GRANT UPDATE (status, resume_at, task_token, task_phase, errors, updated_at) ON ramps.ramps TO rampart_ramp_watch;
GRANT SELECT ON journal.mirrors TO rampart_ramp_watch;
GRANT SELECT ON ledger.accounts TO rampart_ramp_watch;
GRANT USAGE ON SCHEMA rails TO rampart_ramp_watch;
GRANT SELECT, INSERT ON rails.payments TO rampart_ramp_watch;
