-- Rampart ledger: the same rules, less work while account locks are held (docs/ledger.md,
-- "Performance"). Measured against pgbench TPC-B (make bench):
--   * A transfer's row is written BEFORE its accounts are locked. Its reference is claimed by
--     that insert (the unique index is the arbiter), so a replay or a conflict is answered without
--     touching an account, and the locks are held only for the balance checks, the entries and
--     the account update. A refusal found under the locks turns the claimed row into the pinned
--     failure (single) or rolls the claim back and pins the failing item (batch).
--   * No nested PL/pgSQL calls on the hot path (lock_pair, apply_posted inlined): each call copied
--     account rows as composites and built arrays of them.
--   * A batch no longer probes its references with a query that a plan cached while the table was
--     small runs as a sequential scan of every transfer (it grew with the table: 6 -> 15 ms per
--     batch after 4,000 transfers); the insert is the probe. It plans its writes before it locks
--     (ledger.batch_plan), locks and reads its accounts in one statement (ledger.lock_batch) and
--     writes from what that read (ledger.apply_batch): 440k -> 178k instructions per transfer
--     under the locks that serialize concurrent batches.
--   * Table CHECKs are re-read and re-planned by every statement that writes the table: one-column
--     rules become domains (below).
-- Lock order is unchanged for accounts (ascending id). A transaction that waits for a reference
-- holds no account lock, and one that holds account locks never waits for a reference; two
-- batches that share references in different orders can deadlock on them (PostgreSQL aborts one
-- with 40P01, which the adapter retries: the retry answers as a replay or a conflict).
-- depends: 0005.ledger-limits

-- Every statement that writes a table with CHECK constraints reads them back from the catalog
-- (stringToNode) and plans them again: 0.5M of a single transfer's 1.5M instructions went there
-- (callgrind, docs/ledger.md). Rules on one column become domains, whose checks the type cache
-- keeps prepared; the one rule that spans columns and guards money (no overdraft) stays a CHECK;
-- the other cross-column rules (the limit on an account's sums, a transfer's shape) are kept by
-- the functions that are the only writers and audited by ledger.verify() (below).
CREATE DOMAIN ledger.units AS numeric(78, 0) CHECK (VALUE >= 0 AND VALUE <= 115792089237316195423570985008687907853269984665640564039457584007913129639935);
CREATE DOMAIN ledger.positive_units AS numeric(78, 0) CHECK (VALUE > 0 AND VALUE <= 115792089237316195423570985008687907853269984665640564039457584007913129639935);
CREATE DOMAIN ledger.transfer_status AS text CHECK (VALUE IN ('posted', 'pending', 'voided', 'expired', 'failed'));
CREATE DOMAIN ledger.direction AS text CHECK (VALUE IN ('debit', 'credit'));
CREATE DOMAIN ledger.reference AS text CHECK (length(VALUE) BETWEEN 1 AND 200);
CREATE DOMAIN ledger.seconds AS integer CHECK (VALUE > 0);

-- SQL-standard function bodies depend on the columns they read: drop, retype, recreate (as in 0002).
DROP FUNCTION ledger.same_content(ledger.transfers, bigint, bigint, numeric, text, integer);
DROP FUNCTION ledger.outcome_of(ledger.transfers, text, integer, boolean);
ALTER TABLE ledger.accounts DROP CONSTRAINT accounts_rules;
ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_rules;
ALTER TABLE ledger.entries DROP CONSTRAINT entries_rules;
ALTER TABLE ledger.accounts
    ALTER COLUMN debits_pending TYPE ledger.units, ALTER COLUMN debits_posted TYPE ledger.units,
    ALTER COLUMN credits_pending TYPE ledger.units, ALTER COLUMN credits_posted TYPE ledger.units;
ALTER TABLE ledger.transfers
    ALTER COLUMN reference TYPE ledger.reference, ALTER COLUMN amount TYPE ledger.units,
    ALTER COLUMN hold_amount TYPE ledger.positive_units, ALTER COLUMN timeout_seconds TYPE ledger.seconds,
    ALTER COLUMN status TYPE ledger.transfer_status;
ALTER TABLE ledger.entries ALTER COLUMN direction TYPE ledger.direction, ALTER COLUMN amount TYPE ledger.positive_units;
ALTER TABLE ledger.accounts ADD CONSTRAINT accounts_rules CHECK (
    (NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted)
    AND (NOT is_system OR name IS NOT NULL));

CREATE FUNCTION ledger.same_content(
    t ledger.transfers, p_debit bigint, p_credit bigint, p_amount numeric, p_currency text, p_timeout integer
) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    RETURN t.debit_account_id = p_debit AND t.credit_account_id = p_credit AND t.currency = p_currency
       AND coalesce(t.hold_amount, t.amount) = p_amount AND t.timeout_seconds IS NOT DISTINCT FROM p_timeout;

CREATE FUNCTION ledger.outcome_of(t ledger.transfers, err text, idx integer, replayed boolean)
RETURNS ledger.outcome
    LANGUAGE sql STABLE
    RETURN ROW(err, idx, replayed, t.id, t.owner_id, t.reference, t.debit_account_id,
               t.credit_account_id, t.currency, t.amount, t.hold_amount, t.timeout_seconds,
               CASE WHEN t.status = 'pending' AND t.expires_at <= now() THEN 'expired' ELSE t.status END,
               t.created_at, t.expires_at, t.finalized_at)::ledger.outcome;

-- The audit gains the rules that left the CHECKs.
ALTER FUNCTION ledger.verify() RENAME TO verify_books;
CREATE FUNCTION ledger.verify() RETURNS TABLE (check_name text, detail text)
    LANGUAGE sql STABLE AS $$
    SELECT * FROM ledger.verify_books()
    UNION ALL
    -- Each side of an account (posted + pending) within the ledger limit.
    SELECT 'ledger_limit', format('account %s: debits %s, credits %s', a.id,
                                  a.debits_posted + a.debits_pending, a.credits_posted + a.credits_pending)
      FROM ledger.accounts a
     WHERE a.debits_posted + a.debits_pending > 115792089237316195423570985008687907853269984665640564039457584007913129639935
        OR a.credits_posted + a.credits_pending > 115792089237316195423570985008687907853269984665640564039457584007913129639935
    UNION ALL
    -- A transfer's shape: failed exactly when it has an error; a hold has its timeout and posts at
    -- most what it held.
    SELECT 'transfer_shape', format('transfer %s: status %s, error %s, amount %s, hold %s, timeout %s', t.id,
                                    t.status, t.error, t.amount, t.hold_amount, t.timeout_seconds)
      FROM ledger.transfers t
     WHERE (t.status = 'failed') <> (t.error IS NOT NULL)
        OR (t.hold_amount IS NULL) <> (t.timeout_seconds IS NULL)
        OR t.amount > coalesce(t.hold_amount, t.amount)
$$;

CREATE OR REPLACE FUNCTION ledger.create_transfer(
    p_owner text, p_reference text, p_debit bigint, p_credit bigint, p_amount numeric,
    p_currency text, p_timeout integer DEFAULT NULL, p_enforce_owner boolean DEFAULT true
) RETURNS ledger.outcome
    LANGUAGE plpgsql AS $$
DECLARE
    d      record;
    c      record;
    t      ledger.transfers;
    v_err  text;
    v_bal_d numeric;
    v_bal_c numeric;
    v_hash_d bytea;
    v_hash_c bytea;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        RETURN ledger.outcome_of(NULL, 'invalid_amount', NULL, false);  -- malformed: nothing to pin
    ELSIF p_amount > 115792089237316195423570985008687907853269984665640564039457584007913129639935 THEN
        RETURN ledger.outcome_of(NULL, 'amount_limit', NULL, false);  -- 2^256 - 1: nothing to pin (nor storable)
    ELSIF p_debit = p_credit THEN
        v_err := 'same_account';
    END IF;

    -- Claim the reference first: a replay or a conflict never locks an account.
    INSERT INTO ledger.transfers AS tr (owner_id, reference, debit_account_id, credit_account_id, currency,
                                        amount, hold_amount, timeout_seconds, status, error, expires_at)
    VALUES (p_owner, p_reference, p_debit, p_credit, p_currency,
            CASE WHEN p_timeout IS NULL THEN p_amount ELSE 0 END,
            CASE WHEN p_timeout IS NULL THEN NULL ELSE p_amount END,
            p_timeout,
            CASE WHEN v_err IS NOT NULL THEN 'failed' WHEN p_timeout IS NULL THEN 'posted' ELSE 'pending' END,
            v_err,
            CASE WHEN p_timeout IS NULL OR v_err IS NOT NULL THEN NULL
                 ELSE now() + make_interval(secs => p_timeout) END)
    ON CONFLICT (owner_id, reference) DO NOTHING
    RETURNING * INTO t;

    IF NOT FOUND THEN
        -- The reference exists: same content answers with the original (or its pinned failure).
        SELECT * INTO t FROM ledger.transfers WHERE owner_id = p_owner AND reference = p_reference;
        IF ledger.same_content(t, p_debit, p_credit, p_amount, p_currency, p_timeout) THEN
            RETURN ledger.outcome_of(t, t.error, NULL, true);
        END IF;
        RETURN ledger.outcome_of(t, 'reference_conflict', NULL, false);
    ELSIF v_err IS NOT NULL THEN
        RETURN ledger.outcome_of(t, v_err, NULL, false);
    END IF;

    -- Lock both accounts in ascending id order, then check them. Their ctids address the update:
    -- a row we hold locked keeps its ctid until we update it.
    IF p_debit < p_credit THEN
        SELECT a.*, a.ctid AS tid INTO d FROM ledger.accounts a WHERE id = p_debit FOR UPDATE;
        SELECT a.*, a.ctid AS tid INTO c FROM ledger.accounts a WHERE id = p_credit FOR UPDATE;
    ELSE
        SELECT a.*, a.ctid AS tid INTO c FROM ledger.accounts a WHERE id = p_credit FOR UPDATE;
        SELECT a.*, a.ctid AS tid INTO d FROM ledger.accounts a WHERE id = p_debit FOR UPDATE;
    END IF;
    IF d.id IS NULL OR (p_enforce_owner AND d.owner_id <> p_owner) THEN
        v_err := 'unknown_debit_account';
    ELSIF c.id IS NULL THEN
        v_err := 'unknown_credit_account';
    ELSIF d.currency <> p_currency OR c.currency <> p_currency THEN
        v_err := 'currency_mismatch';
    ELSIF d.debits_must_not_exceed_credits
          AND d.debits_pending + d.debits_posted + p_amount > d.credits_posted THEN
        -- Expired holds no longer reserve funds: release them (without waiting) and look again.
        IF d.debits_pending > 0 AND ledger.release_expired_debits(d.id, c.id) > 0 THEN
            SELECT a.*, a.ctid AS tid INTO d FROM ledger.accounts a WHERE id = p_debit;
            SELECT a.*, a.ctid AS tid INTO c FROM ledger.accounts a WHERE id = p_credit;
        END IF;
        IF d.debits_pending + d.debits_posted + p_amount > d.credits_posted THEN
            v_err := 'insufficient_funds';
        END IF;
    END IF;
    -- The ledger limit, on the rows already locked and read: no statement of its own.
    IF v_err IS NULL
       AND greatest(d.debits_posted + d.debits_pending, c.credits_posted + c.credits_pending) + p_amount
           > 115792089237316195423570985008687907853269984665640564039457584007913129639935 THEN
        v_err := 'balance_limit';
    END IF;

    IF v_err IS NOT NULL THEN
        -- Pin the refusal to the claimed reference (the row keeps the request's content).
        UPDATE ledger.transfers SET status = 'failed', error = v_err, expires_at = NULL
         WHERE id = t.id RETURNING * INTO t;
        RETURN ledger.outcome_of(t, v_err, NULL, false);
    END IF;

    IF p_timeout IS NULL THEN
        -- Posted: both entries extend their account's chain; both accounts in one statement.
        v_bal_d := d.credits_posted - d.debits_posted - p_amount;
        v_bal_c := c.credits_posted - c.debits_posted + p_amount;
        v_hash_d := ledger.entry_hash(d.last_hash, d.id, d.last_sequence + 1, t.id, 'debit', p_amount, v_bal_d);
        v_hash_c := ledger.entry_hash(c.last_hash, c.id, c.last_sequence + 1, t.id, 'credit', p_amount, v_bal_c);
        INSERT INTO ledger.entries (account_id, sequence, transfer_id, direction, amount, balance_after, prev_hash, hash)
        VALUES (d.id, d.last_sequence + 1, t.id, 'debit', p_amount, v_bal_d, d.last_hash, v_hash_d),
               (c.id, c.last_sequence + 1, t.id, 'credit', p_amount, v_bal_c, c.last_hash, v_hash_c);
        UPDATE ledger.accounts a
           SET debits_posted = a.debits_posted + CASE WHEN a.id = p_debit THEN p_amount ELSE 0 END,
               credits_posted = a.credits_posted + CASE WHEN a.id = p_credit THEN p_amount ELSE 0 END,
               last_sequence = a.last_sequence + 1,
               last_hash = CASE WHEN a.id = p_debit THEN v_hash_d ELSE v_hash_c END, version = a.version + 1
         WHERE a.ctid = ANY (ARRAY[d.tid, c.tid]);
    ELSE
        UPDATE ledger.accounts a
           SET debits_pending = a.debits_pending + x.debits_pending,
               credits_pending = a.credits_pending + x.credits_pending, version = a.version + 1
          FROM (VALUES (d.id, p_amount, 0::numeric), (c.id, 0::numeric, p_amount)) AS x (id, debits_pending, credits_pending)
         WHERE a.id = x.id;
    END IF;
    RETURN ledger.outcome_of(t, NULL, NULL, false);
END
$$;

-- Under the locks by primary key, always: a plan cached while the accounts table was small scans
-- it whole for each of the two locks (0.16M instructions per transfer at 86 accounts).
ALTER FUNCTION ledger.create_transfer(text, text, bigint, bigint, numeric, text, integer, boolean)
    SET enable_seqscan = off;

-- The same bytes hashed with one concat_ws instead of eleven casts and concatenations, each an
-- expression node to set up on every call (verify() recomputes every stored hash: unchanged).
CREATE OR REPLACE FUNCTION ledger.entry_hash(
    prev bytea, account_id bigint, seq bigint, transfer_id bigint, direction text,
    amount numeric, balance_after numeric
) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN sha256(prev || convert_to(concat_ws('|', account_id, seq, transfer_id, direction, amount, balance_after),
                                     'UTF8'));

-- The answer to a batch some of whose references exist: the whole batch replayed (every item
-- exists with the same content and was applied), else the first existing item decides (its
-- pinned failure, or a conflict). No row when none exists.
CREATE FUNCTION ledger.batch_existing(
    p_owner text, p_refs text[], p_debits bigint[], p_credits bigint[], p_amounts numeric[],
    p_currencies text[], p_timeouts integer[]
) RETURNS SETOF ledger.outcome
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    n       integer := cardinality(p_refs);
    v_total integer;
    v_same  integer;
    v_tid   bigint;
    v_idx   integer;
    v_is_same boolean;
    t       ledger.transfers;
BEGIN
    SELECT count(*), count(*) FILTER (WHERE x.same AND x.status <> 'failed')
      INTO v_total, v_same
      FROM (SELECT tr.status, ledger.same_content(tr, it.debit, it.credit, it.amount, it.currency, it.timeout) AS same
              FROM unnest(p_refs, p_debits, p_credits, p_amounts, p_currencies, p_timeouts)
                   WITH ORDINALITY AS it (ref, debit, credit, amount, currency, timeout, i)
              JOIN ledger.transfers tr ON tr.owner_id = p_owner AND tr.reference = it.ref) x;
    IF v_total = n AND v_same = n THEN
        RETURN QUERY
            SELECT (ledger.outcome_of(tr, NULL, NULL, true)).*
              FROM unnest(p_refs) WITH ORDINALITY AS it (ref, i)
              JOIN ledger.transfers tr ON tr.owner_id = p_owner AND tr.reference = it.ref
             ORDER BY it.i;
    ELSIF v_total > 0 THEN
        SELECT tr.id, it.i - 1, ledger.same_content(tr, it.debit, it.credit, it.amount, it.currency, it.timeout)
          INTO v_tid, v_idx, v_is_same
          FROM unnest(p_refs, p_debits, p_credits, p_amounts, p_currencies, p_timeouts)
               WITH ORDINALITY AS it (ref, debit, credit, amount, currency, timeout, i)
          JOIN ledger.transfers tr ON tr.owner_id = p_owner AND tr.reference = it.ref
         ORDER BY it.i LIMIT 1;
        SELECT * INTO t FROM ledger.transfers WHERE id = v_tid;
        IF t.status = 'failed' AND v_is_same THEN
            RETURN NEXT ledger.outcome_of(t, t.error, v_idx, true);
        ELSE
            RETURN NEXT ledger.outcome_of(t, 'reference_conflict', v_idx, false);
        END IF;
    END IF;
END
$$;

-- A batch's writes, planned before its accounts are locked (what does not depend on them: each
-- account's net change and whole-batch totals, the posted legs in chain order with their running
-- delta), then applied under the locks from the locked rows read once (ledger.lock_batch).
CREATE TYPE ledger.batch_plan AS (
    accts      bigint[],   -- the batch's accounts, ascending
    d_posted   numeric[],  -- per account: debits and credits, posted and pending
    d_pending  numeric[],
    c_posted   numeric[],
    c_pending  numeric[],
    l_acct     bigint[],   -- posted legs, by account then item: the account, the transfer,
    l_tid      bigint[],   -- the side, the amount, the leg's number on its account and the
    l_dir      text[],     -- account's posted balance change up to and including it
    l_amount   numeric[],
    l_n        bigint[],
    l_delta    numeric[]
);

CREATE TYPE ledger.batch_state AS (
    fits   boolean,   -- whole-batch totals within every balance rule and the ledger limit
    tids   tid[],     -- the locked rows (their ctids hold while we hold the locks)
    seqs   bigint[],  -- chain heads and posted balances, aligned with the plan's accounts
    hashes bytea[],
    posted numeric[]
);

CREATE FUNCTION ledger.batch_plan(
    p_ids bigint[], p_debits bigint[], p_credits bigint[], p_amounts numeric[], p_timeouts integer[]
) RETURNS ledger.batch_plan
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    r ledger.batch_plan;
BEGIN
    SELECT array_agg(s.acct ORDER BY s.acct), array_agg(s.dp ORDER BY s.acct), array_agg(s.dpe ORDER BY s.acct),
           array_agg(s.cp ORDER BY s.acct), array_agg(s.cpe ORDER BY s.acct)
      INTO r.accts, r.d_posted, r.d_pending, r.c_posted, r.c_pending
      FROM (SELECT x.acct,
                   coalesce(sum(it.amount) FILTER (WHERE x.is_debit AND it.timeout IS NULL), 0) AS dp,
                   coalesce(sum(it.amount) FILTER (WHERE x.is_debit AND it.timeout IS NOT NULL), 0) AS dpe,
                   coalesce(sum(it.amount) FILTER (WHERE NOT x.is_debit AND it.timeout IS NULL), 0) AS cp,
                   coalesce(sum(it.amount) FILTER (WHERE NOT x.is_debit AND it.timeout IS NOT NULL), 0) AS cpe
              FROM unnest(p_debits, p_credits, p_amounts, p_timeouts) AS it (debit, credit, amount, timeout)
             CROSS JOIN LATERAL (VALUES (it.debit, true), (it.credit, false)) AS x (acct, is_debit)
             GROUP BY x.acct) s;
    SELECT array_agg(q.acct ORDER BY q.acct, q.i), array_agg(q.tid ORDER BY q.acct, q.i),
           array_agg(q.dir ORDER BY q.acct, q.i), array_agg(q.amount ORDER BY q.acct, q.i),
           array_agg(q.n ORDER BY q.acct, q.i), array_agg(q.delta ORDER BY q.acct, q.i)
      INTO r.l_acct, r.l_tid, r.l_dir, r.l_amount, r.l_n, r.l_delta
      FROM (SELECT l.acct, l.i, l.tid, l.dir, l.amount, row_number() OVER w AS n,
                   sum(CASE WHEN l.dir = 'credit' THEN l.amount ELSE -l.amount END) OVER w AS delta
              FROM (SELECT x.acct, it.i, it.id AS tid, x.dir, it.amount
                      FROM unnest(p_ids, p_debits, p_credits, p_amounts, p_timeouts)
                           WITH ORDINALITY AS it (id, debit, credit, amount, timeout, i)
                     CROSS JOIN LATERAL (VALUES (it.debit, 'debit'), (it.credit, 'credit')) AS x (acct, dir)
                     WHERE it.timeout IS NULL) l
            WINDOW w AS (PARTITION BY l.acct ORDER BY l.i)) q;
    RETURN r;
END
$$;

-- Lock a batch's accounts in ascending id order and read, in the same pass, what the writes need
-- and whether the whole-batch totals fit (enough on its own: a prefix of the items never takes
-- more than all of them, and credits only help the balance rule; ledger.batch_refusal's exact
-- item-order pass runs only when this says no).
CREATE FUNCTION ledger.lock_batch(p ledger.batch_plan) RETURNS ledger.batch_state
    LANGUAGE plpgsql AS $$
DECLARE
    r ledger.batch_state;
BEGIN
    SELECT bool_and(NOT ((x.rule AND x.debits_pending + x.debits_posted + n.dp + n.dpe > x.credits_posted)
                         OR x.debits_posted + x.debits_pending + n.dp + n.dpe > 115792089237316195423570985008687907853269984665640564039457584007913129639935
                         OR x.credits_posted + x.credits_pending + n.cp + n.cpe > 115792089237316195423570985008687907853269984665640564039457584007913129639935)),
           array_agg(x.tid ORDER BY x.id), array_agg(x.last_sequence ORDER BY x.id),
           array_agg(x.last_hash ORDER BY x.id), array_agg(x.credits_posted - x.debits_posted ORDER BY x.id)
      INTO r.fits, r.tids, r.seqs, r.hashes, r.posted
      FROM (SELECT a.id, a.ctid AS tid, a.debits_must_not_exceed_credits AS rule, a.debits_pending, a.debits_posted,
                   a.credits_pending, a.credits_posted, a.last_sequence, a.last_hash
              FROM ledger.accounts a WHERE a.id = ANY (p.accts) ORDER BY a.id FOR UPDATE) x
      JOIN unnest(p.accts, p.d_posted, p.d_pending, p.c_posted, p.c_pending) AS n (acct, dp, dpe, cp, cpe)
        ON n.acct = x.id;
    RETURN r;
END
$$;

-- The writes, the accounts locked (st from ledger.lock_batch) and every item checked: entries
-- chained per account (a window aggregate) and each account updated once, by ctid.
CREATE FUNCTION ledger.apply_batch(p ledger.batch_plan, st ledger.batch_state) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    WITH legs AS (
        SELECT l.ord, l.acct, l.tid, l.dir, l.amount, s.seq0 + l.n AS seq, s.posted0 + l.delta AS balance_after, s.hash0
          FROM unnest(p.l_acct, p.l_tid, p.l_dir, p.l_amount, p.l_n, p.l_delta)
               WITH ORDINALITY AS l (acct, tid, dir, amount, n, delta, ord)
          JOIN unnest(p.accts, st.seqs, st.hashes, st.posted) AS s (acct, seq0, hash0, posted0) ON s.acct = l.acct
    ), chained AS (
        SELECT legs.*, ledger.hash_link(legs.hash0, legs.acct, legs.seq, legs.tid, legs.dir, legs.amount,
                                        legs.balance_after) OVER (PARTITION BY legs.acct ORDER BY legs.ord) AS link
          FROM legs
    ), ins_entries AS (
        INSERT INTO ledger.entries (account_id, sequence, transfer_id, direction, amount, balance_after, prev_hash, hash)
        SELECT ch.acct, ch.seq, ch.tid, ch.dir, ch.amount, ch.balance_after, substr(ch.link, 1, 32), substr(ch.link, 33)
          FROM chained ch
    ), heads AS (
        SELECT DISTINCT ON (ch.acct) ch.acct, ch.seq, substr(ch.link, 33) AS hash FROM chained ch ORDER BY ch.acct, ch.ord DESC
    )
    UPDATE ledger.accounts a
       SET debits_posted = a.debits_posted + n.dp,
           debits_pending = a.debits_pending + n.dpe,
           credits_posted = a.credits_posted + n.cp,
           credits_pending = a.credits_pending + n.cpe,
           last_sequence = coalesce(heads.seq, a.last_sequence),
           last_hash = coalesce(heads.hash, a.last_hash),
           version = a.version + 1
      FROM unnest(p.accts, p.d_posted, p.d_pending, p.c_posted, p.c_pending) AS n (acct, dp, dpe, cp, cpe)
      LEFT JOIN heads ON heads.acct = n.acct
     WHERE a.ctid = ANY (st.tids) AND a.id = n.acct;
END
$$;

-- A link of an account's hash chain: the previous hash and this entry's (32 bytes each), so one
-- window pass gives both (ledger.hash_chain, which it replaces, gave the hash, and a second pass
-- its predecessor).
CREATE FUNCTION ledger.hash_link_step(
    state bytea, init bytea, account_id bigint, seq bigint, transfer_id bigint, direction text,
    amount numeric, balance_after numeric
) RETURNS bytea
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    prev bytea := coalesce(substr(state, 33), init);
BEGIN
    RETURN prev || ledger.entry_hash(prev, account_id, seq, transfer_id, direction, amount, balance_after);
END
$$;

CREATE AGGREGATE ledger.hash_link(bytea, bigint, bigint, bigint, text, numeric, numeric) (
    SFUNC = ledger.hash_link_step, STYPE = bytea
);

-- Claim every reference of a batch (insert its transfers); their ids and rows in item order, or
-- NULLs when a reference exists (the caller rolls back or raises).
CREATE FUNCTION ledger.claim_batch(
    p_owner text, p_refs text[], p_debits bigint[], p_credits bigint[], p_amounts numeric[],
    p_currencies text[], p_timeouts integer[], OUT ids bigint[], OUT rows ledger.transfers[]
)
    LANGUAGE plpgsql AS $$
BEGIN
    WITH it AS (
        SELECT * FROM unnest(p_refs, p_debits, p_credits, p_amounts, p_currencies, p_timeouts)
                      WITH ORDINALITY AS it (ref, debit, credit, amount, currency, timeout, i)
    ), ins AS (
        INSERT INTO ledger.transfers (owner_id, reference, debit_account_id, credit_account_id, currency,
                                      amount, hold_amount, timeout_seconds, status, expires_at)
        SELECT p_owner, it.ref, it.debit, it.credit, it.currency,
               CASE WHEN it.timeout IS NULL THEN it.amount ELSE 0 END,
               CASE WHEN it.timeout IS NULL THEN NULL ELSE it.amount END,
               it.timeout,
               CASE WHEN it.timeout IS NULL THEN 'posted' ELSE 'pending' END,
               CASE WHEN it.timeout IS NULL THEN NULL ELSE now() + make_interval(secs => it.timeout) END
          FROM it ORDER BY it.i
        ON CONFLICT (owner_id, reference) DO NOTHING
        RETURNING *
    )
    SELECT array_agg(ins.id ORDER BY it.i), array_agg(ins::ledger.transfers ORDER BY it.i)
      INTO ids, rows
      FROM ins JOIN it ON it.ref = ins.reference;
    IF coalesce(cardinality(ids), 0) <> cardinality(p_refs) THEN
        ids := NULL;
        rows := NULL;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION ledger.create_transfers(
    p_owner text, p_refs text[], p_debits bigint[], p_credits bigint[], p_amounts numeric[],
    p_currencies text[], p_timeouts integer[], p_enforce_owner boolean DEFAULT true
) RETURNS SETOF ledger.outcome
    LANGUAGE plpgsql AS $$
DECLARE
    n       integer := cardinality(p_refs);
    v_err   text;
    v_idx   integer;
    v_claim record;
    v_reply ledger.outcome[];
    v_plan  ledger.batch_plan;
    v_state ledger.batch_state;
    v_bidx  integer;
    v_berr  text;
    v_released integer;
    v_existing boolean := false;
    t       ledger.transfers;
BEGIN
    IF n IS NULL OR n = 0 OR n > 100 OR cardinality(p_debits) <> n OR cardinality(p_credits) <> n
       OR cardinality(p_amounts) <> n OR cardinality(p_currencies) <> n OR cardinality(p_timeouts) <> n THEN
        RAISE EXCEPTION 'a batch holds 1 to 100 transfers, all arrays of one length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Per-item validation on what never changes (ownership, currency, existence: accounts are
    -- never deleted), before any lock. An existing reference, or an earlier item refused for
    -- funds or the limit, outranks what it finds.
    SELECT x.i, x.err INTO v_idx, v_err
      FROM (SELECT it.i,
                   CASE WHEN it.amount IS NULL OR it.amount <= 0 THEN 'invalid_amount'
                        WHEN it.amount > 115792089237316195423570985008687907853269984665640564039457584007913129639935
                             THEN 'amount_limit'
                        WHEN count(*) OVER (PARTITION BY it.ref ORDER BY it.i) > 1 THEN 'duplicate_reference'
                        WHEN it.debit = it.credit THEN 'same_account'
                        WHEN d.id IS NULL OR (p_enforce_owner AND d.owner_id <> p_owner) THEN 'unknown_debit_account'
                        WHEN c.id IS NULL THEN 'unknown_credit_account'
                        WHEN d.currency <> it.currency OR c.currency <> it.currency THEN 'currency_mismatch'
                   END AS err
              FROM unnest(p_refs, p_debits, p_credits, p_amounts, p_currencies)
                   WITH ORDINALITY AS it (ref, debit, credit, amount, currency, i)
              LEFT JOIN ledger.accounts d ON d.id = it.debit
              LEFT JOIN ledger.accounts c ON c.id = it.credit) x
     WHERE x.err IS NOT NULL
     ORDER BY x.i LIMIT 1;

    IF v_err IS NULL THEN
        -- The common case: claim every reference, then lock and write. A claim that meets an
        -- existing reference, or a refusal under the locks, rolls back the claims and the locks
        -- taken since, and the batch is answered as below.
        BEGIN
            SELECT * INTO v_claim FROM ledger.claim_batch(p_owner, p_refs, p_debits, p_credits, p_amounts,
                                                          p_currencies, p_timeouts);
            IF v_claim.ids IS NULL THEN
                v_existing := true;
                RAISE EXCEPTION 'a reference of this batch exists' USING ERRCODE = 'RP001';
            END IF;
            -- What needs no lock comes first: the reply (the claimed rows) and the plan of the writes.
            v_reply := ARRAY(SELECT ledger.outcome_of(u, NULL, NULL, false) FROM unnest(v_claim.rows) AS u);
            v_plan := ledger.batch_plan(v_claim.ids, p_debits, p_credits, p_amounts, p_timeouts);
            v_state := ledger.lock_batch(v_plan);
            IF NOT v_state.fits
               AND EXISTS (SELECT 1 FROM ledger.batch_refusal(p_debits, p_credits, p_amounts, p_timeouts)) THEN
                RAISE EXCEPTION 'an item of this batch is refused' USING ERRCODE = 'RP002';
            END IF;
            PERFORM ledger.apply_batch(v_plan, v_state);
            RETURN QUERY SELECT * FROM unnest(v_reply);  -- array order
            RETURN;
        EXCEPTION WHEN SQLSTATE 'RP001' OR SQLSTATE 'RP002' THEN
            NULL;  -- answered below, on what others committed
        END;
    END IF;

    -- A reference that exists answers first: the whole batch replayed, a pinned failure, a conflict.
    IF v_existing OR v_err IS NOT NULL THEN
        RETURN QUERY SELECT * FROM ledger.batch_existing(p_owner, p_refs, p_debits, p_credits, p_amounts,
                                                         p_currencies, p_timeouts);
        IF FOUND THEN
            RETURN;
        ELSIF v_existing THEN
            -- It went away (its transaction rolled back): let the caller start over.
            RAISE EXCEPTION 'a reference of this batch was taken concurrently' USING ERRCODE = 'RP409';
        END IF;
    END IF;

    -- The balance rule and the ledger limit in item order, under the locks. When either fails,
    -- expired holds of the batch's accounts (all locked by us) no longer reserve funds: release
    -- them and look again, as a single transfer does.
    PERFORM 1 FROM ledger.accounts WHERE id = ANY (p_debits || p_credits) ORDER BY id FOR UPDATE;
    SELECT r.i, r.err INTO v_bidx, v_berr FROM ledger.batch_refusal(p_debits, p_credits, p_amounts, p_timeouts) r;
    IF v_bidx IS NOT NULL AND (v_idx IS NULL OR v_bidx < v_idx) THEN
        SELECT count(*) INTO v_released
          FROM (SELECT DISTINCT a.id FROM ledger.accounts a
                 WHERE a.id = ANY (p_debits) AND a.debits_pending > 0) x,
               LATERAL ledger.release_expired_debits(x.id, x.id) AS r
         WHERE r > 0;
        IF v_released > 0 THEN
            SELECT r.i, r.err INTO v_bidx, v_berr
              FROM ledger.batch_refusal(p_debits, p_credits, p_amounts, p_timeouts) r;
        END IF;
    END IF;
    -- The first failing item decides, whatever the reason.
    IF v_bidx IS NOT NULL AND (v_idx IS NULL OR v_bidx < v_idx) THEN
        v_idx := v_bidx;
        v_err := v_berr;
    END IF;

    IF v_err IS NULL THEN
        -- Nothing refuses it any more (released holds, or credits committed meanwhile): apply it.
        SELECT * INTO v_claim FROM ledger.claim_batch(p_owner, p_refs, p_debits, p_credits, p_amounts,
                                                      p_currencies, p_timeouts);
        IF v_claim.ids IS NULL THEN
            RAISE EXCEPTION 'a reference of this batch was taken concurrently' USING ERRCODE = 'RP409';
        END IF;
        v_plan := ledger.batch_plan(v_claim.ids, p_debits, p_credits, p_amounts, p_timeouts);
        PERFORM ledger.apply_batch(v_plan, ledger.lock_batch(v_plan));  -- locked already: the rows and ctids
        RETURN QUERY
            SELECT o.* FROM unnest(v_claim.rows) AS u, LATERAL ledger.outcome_of(u, NULL, NULL, false) o;
        RETURN;
    ELSIF v_err IN ('invalid_amount', 'amount_limit', 'duplicate_reference') THEN
        RETURN NEXT ledger.outcome_of(NULL, v_err, v_idx - 1, false);  -- malformed: nothing to pin
        RETURN;
    END IF;
    -- Pin the refusal to the failing item's reference; the rest of the batch stays unused.
    INSERT INTO ledger.transfers (owner_id, reference, debit_account_id, credit_account_id, currency,
                                  amount, hold_amount, timeout_seconds, status, error)
    VALUES (p_owner, p_refs[v_idx], p_debits[v_idx], p_credits[v_idx], p_currencies[v_idx],
            CASE WHEN p_timeouts[v_idx] IS NULL THEN p_amounts[v_idx] ELSE 0 END,
            CASE WHEN p_timeouts[v_idx] IS NULL THEN NULL ELSE p_amounts[v_idx] END,
            p_timeouts[v_idx], 'failed', v_err)
    ON CONFLICT (owner_id, reference) DO NOTHING
    RETURNING * INTO t;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'a reference of this batch was taken concurrently' USING ERRCODE = 'RP409';
    END IF;
    RETURN NEXT ledger.outcome_of(t, v_err, v_idx - 1, false);
END
$$;

DROP AGGREGATE ledger.hash_chain(bytea, bigint, bigint, bigint, text, numeric, numeric);
DROP FUNCTION ledger.hash_chain_step(bytea, bytea, bigint, bigint, bigint, text, numeric, numeric);
