-- pgaudit (issue 12, §5): who changed the schema or the roles, and who wrote outside the ledger's
-- functions, in the database's own log. Aurora's cluster parameter group (infra/stacks/data.py
-- DB_PARAMETERS) preloads the library and sets the session audit classes (ddl, role, write) and
-- pgaudit.role = rds_pgaudit; the extension itself must be created in the database, which is
-- what this migration does, where the server offers it (pg_available_extensions). A server
-- without pgaudit — the twin's embedded PostgreSQL, the tests' — gets nothing: a no-op.
--
-- * rds_pgaudit is the role pgaudit.role names: object auditing logs the statements on whatever
--   is granted to it. It is created here (NOLOGIN, granted nothing): which tables to audit
--   object by object (reads of auth.partners, say) is a decision left to a human (docs/cloud.md).
--   Roles are cluster-wide, so it is created only if absent, tolerating a concurrent creation.
-- * CREATE EXTENSION fails when the library is not preloaded (a cluster created before the
--   parameter group took effect needs a reboot first): the deploy fails loudly, never silently
--   without auditing.
-- depends: 0009.ramps

DO $audit$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'pgaudit') THEN
        RAISE NOTICE 'this server offers no pgaudit extension: nothing to audit with';
        RETURN;
    END IF;
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rds_pgaudit') THEN
            CREATE ROLE rds_pgaudit NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by the migration of another database of this server
    END;
    CREATE EXTENSION IF NOT EXISTS pgaudit;
END
$audit$;
