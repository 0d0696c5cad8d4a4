-- Rampart ledger: operations. Each public function is one round trip from the application and
-- never raises for a business refusal: it returns the error code in its outcome, so a refused
-- transfer can be pinned to its reference in the same transaction.
-- Lock order everywhere: accounts in ascending id, then transfer rows. Locks taken out of that
-- order are only ever taken with SKIP LOCKED (never waited for), so no interleaving deadlocks.
-- depends: 0001.ledger-schema

-- The hash of one entry, over its account's previous entry hash. STABLE, not IMMUTABLE: its body
-- calls convert_to() (STABLE), and PostgreSQL inlines a SQL function only when the declared
-- volatility holds for the body; inlined, two hashes cost about half as much.
CREATE FUNCTION ledger.entry_hash(
    prev bytea, account_id bigint, seq bigint, transfer_id bigint, direction text,
    amount numeric, balance_after numeric
) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN sha256(prev || convert_to(
        account_id::text || '|' || seq::text || '|' || transfer_id::text || '|' || direction || '|'
        || amount::text || '|' || balance_after::text, 'UTF8'));

-- Running hash chain as an aggregate, so a batch can chain its entries in one window pass.
-- PL/pgSQL on purpose: a transition function is never inlined, and a SQL-language one pays the
-- SQL function executor on every row (about 4x slower here).
CREATE FUNCTION ledger.hash_chain_step(
    state bytea, init bytea, account_id bigint, seq bigint, transfer_id bigint, direction text,
    amount numeric, balance_after numeric
) RETURNS bytea
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN ledger.entry_hash(coalesce(state, init), account_id, seq, transfer_id, direction, amount, balance_after);
END
$$;

CREATE AGGREGATE ledger.hash_chain(bytea, bigint, bigint, bigint, text, numeric, numeric) (
    SFUNC = ledger.hash_chain_step,
    STYPE = bytea
);

-- What every operation returns: an error code (NULL on success), the failing item of a batch,
-- whether the reference already existed with this content, and the transfer.
CREATE TYPE ledger.outcome AS (
    error             text,
    error_index       integer,
    replayed          boolean,
    id                bigint,
    owner_id          text,
    reference         text,
    debit_account_id  bigint,
    credit_account_id bigint,
    currency          text,
    amount            numeric,
    hold_amount       numeric,
    timeout_seconds   integer,
    status            text,
    created_at        timestamptz,
    expires_at        timestamptz,
    finalized_at      timestamptz
);

-- Whether an existing transfer has the content of a request (the reference rule).
CREATE FUNCTION ledger.same_content(
    t ledger.transfers, p_debit bigint, p_credit bigint, p_amount numeric, p_currency text, p_timeout integer
) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    RETURN t.debit_account_id = p_debit AND t.credit_account_id = p_credit AND t.currency = p_currency
       AND coalesce(t.hold_amount, t.amount) = p_amount AND t.timeout_seconds IS NOT DISTINCT FROM p_timeout;

-- A transfer as callers see it: a pending hold past its timeout reads as expired even before
-- the sweep has released it.
CREATE FUNCTION ledger.outcome_of(t ledger.transfers, err text, idx integer, replayed boolean)
RETURNS ledger.outcome
    LANGUAGE sql STABLE
    RETURN ROW(err, idx, replayed, t.id, t.owner_id, t.reference, t.debit_account_id,
               t.credit_account_id, t.currency, t.amount, t.hold_amount, t.timeout_seconds,
               CASE WHEN t.status = 'pending' AND t.expires_at <= now() THEN 'expired' ELSE t.status END,
               t.created_at, t.expires_at, t.finalized_at)::ledger.outcome;

-- Move posted money between two locked accounts, extending both hash chains. The pending
-- deltas let posting a hold release its reservation in the same update.
CREATE FUNCTION ledger.apply_posted(
    p_transfer_id bigint, d ledger.accounts, c ledger.accounts, p_amount numeric, p_release numeric
) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    v_bal_d  numeric := d.credits_posted - d.debits_posted - p_amount;
    v_bal_c  numeric := c.credits_posted - c.debits_posted + p_amount;
    v_hash_d bytea;
    v_hash_c bytea;
BEGIN
    IF p_amount > 0 THEN
        v_hash_d := ledger.entry_hash(d.last_hash, d.id, d.last_sequence + 1, p_transfer_id, 'debit', p_amount, v_bal_d);
        v_hash_c := ledger.entry_hash(c.last_hash, c.id, c.last_sequence + 1, p_transfer_id, 'credit', p_amount, v_bal_c);
        INSERT INTO ledger.entries (account_id, sequence, transfer_id, direction, amount, balance_after, prev_hash, hash)
        VALUES (d.id, d.last_sequence + 1, p_transfer_id, 'debit', p_amount, v_bal_d, d.last_hash, v_hash_d),
               (c.id, c.last_sequence + 1, p_transfer_id, 'credit', p_amount, v_bal_c, c.last_hash, v_hash_c);
        -- Both accounts in one statement (measurably cheaper than two).
        UPDATE ledger.accounts a
           SET debits_posted = a.debits_posted + x.debits_posted,
               credits_posted = a.credits_posted + x.credits_posted,
               debits_pending = a.debits_pending - x.debits_released,
               credits_pending = a.credits_pending - x.credits_released,
               last_sequence = a.last_sequence + 1, last_hash = x.hash, version = a.version + 1
          FROM (VALUES (d.id, p_amount, 0::numeric, p_release, 0::numeric, v_hash_d),
                       (c.id, 0::numeric, p_amount, 0::numeric, p_release, v_hash_c))
               AS x (id, debits_posted, credits_posted, debits_released, credits_released, hash)
         WHERE a.id = x.id;
    ELSIF p_release > 0 THEN
        UPDATE ledger.accounts SET debits_pending = debits_pending - p_release, version = version + 1 WHERE id = d.id;
        UPDATE ledger.accounts SET credits_pending = credits_pending - p_release, version = version + 1 WHERE id = c.id;
    END IF;
END
$$;

-- Release a pending hold (void or expiry). Both accounts must already be locked.
CREATE FUNCTION ledger.release_hold(t ledger.transfers, p_status text) RETURNS ledger.transfers
    LANGUAGE plpgsql AS $$
DECLARE
    r ledger.transfers;
BEGIN
    UPDATE ledger.accounts SET debits_pending = debits_pending - t.hold_amount, version = version + 1
     WHERE id = t.debit_account_id;
    UPDATE ledger.accounts SET credits_pending = credits_pending - t.hold_amount, version = version + 1
     WHERE id = t.credit_account_id;
    UPDATE ledger.transfers SET status = p_status, finalized_at = now() WHERE id = t.id RETURNING * INTO r;
    RETURN r;
END
$$;

-- Release the expired holds debiting p_account, which the caller has locked (as p_other).
-- Out-of-order locks are taken with SKIP LOCKED only: a hold whose other account is busy is left
-- for the sweep. Returns how many holds were released.
CREATE FUNCTION ledger.release_expired_debits(p_account bigint, p_other bigint) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    h ledger.transfers;
    n integer := 0;
BEGIN
    FOR h IN SELECT * FROM ledger.transfers
              WHERE debit_account_id = p_account AND status = 'pending' AND expires_at <= now()
              FOR UPDATE SKIP LOCKED
    LOOP
        IF h.credit_account_id <> p_other THEN
            PERFORM 1 FROM ledger.accounts WHERE id = h.credit_account_id FOR UPDATE SKIP LOCKED;
            CONTINUE WHEN NOT FOUND;
        END IF;
        PERFORM ledger.release_hold(h, 'expired');
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Lock two accounts in id order; returns [debit, credit] (an element is NULL-filled if missing).
CREATE FUNCTION ledger.lock_pair(p_debit bigint, p_credit bigint) RETURNS ledger.accounts[]
    LANGUAGE plpgsql AS $$
DECLARE
    d ledger.accounts;
    c ledger.accounts;
BEGIN
    IF p_debit < p_credit THEN
        SELECT * INTO d FROM ledger.accounts WHERE id = p_debit FOR UPDATE;
        SELECT * INTO c FROM ledger.accounts WHERE id = p_credit FOR UPDATE;
    ELSE
        SELECT * INTO c FROM ledger.accounts WHERE id = p_credit FOR UPDATE;
        SELECT * INTO d FROM ledger.accounts WHERE id = p_debit FOR UPDATE;
    END IF;
    RETURN ARRAY[d, c];
END
$$;

-- Create one transfer: posted, or a pending hold when p_timeout is given.
CREATE FUNCTION ledger.create_transfer(
    p_owner text, p_reference text, p_debit bigint, p_credit bigint, p_amount numeric,
    p_currency text, p_timeout integer DEFAULT NULL, p_enforce_owner boolean DEFAULT true
) RETURNS ledger.outcome
    LANGUAGE plpgsql AS $$
DECLARE
    d     ledger.accounts;
    c     ledger.accounts;
    t     ledger.transfers;
    v_pair ledger.accounts[];
    v_err text;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        RETURN ledger.outcome_of(NULL, 'invalid_amount', NULL, false);  -- malformed: nothing to pin
    ELSIF p_debit = p_credit THEN
        v_err := 'same_account';
    ELSE
        v_pair := ledger.lock_pair(p_debit, p_credit);
        d := v_pair[1];
        c := v_pair[2];
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
                SELECT * INTO d FROM ledger.accounts WHERE id = p_debit;
                SELECT * INTO c FROM ledger.accounts WHERE id = p_credit;
            END IF;
            IF d.debits_pending + d.debits_posted + p_amount > d.credits_posted THEN
                v_err := 'insufficient_funds';
            END IF;
        END IF;
    END IF;

    INSERT INTO ledger.transfers AS tr (owner_id, reference, debit_account_id, credit_account_id, currency,
                                        amount, hold_amount, timeout_seconds, status, error, expires_at)
    VALUES (p_owner, p_reference, p_debit, p_credit, p_currency,
            CASE WHEN p_timeout IS NULL THEN p_amount ELSE 0 END,
            CASE WHEN p_timeout IS NULL THEN NULL ELSE p_amount END,
            p_timeout,
            CASE WHEN v_err IS NOT NULL THEN 'failed' WHEN p_timeout IS NULL THEN 'posted' ELSE 'pending' END,
            v_err,
            CASE WHEN p_timeout IS NULL THEN NULL ELSE now() + make_interval(secs => p_timeout) END)
    ON CONFLICT (owner_id, reference) DO NOTHING
    RETURNING * INTO t;

    IF NOT FOUND THEN
        -- The reference exists: same content answers with the original (or its pinned failure).
        SELECT * INTO t FROM ledger.transfers WHERE owner_id = p_owner AND reference = p_reference;
        IF ledger.same_content(t, p_debit, p_credit, p_amount, p_currency, p_timeout) THEN
            RETURN ledger.outcome_of(t, t.error, NULL, true);
        END IF;
        RETURN ledger.outcome_of(t, 'reference_conflict', NULL, false);
    END IF;

    IF v_err IS NOT NULL THEN
        RETURN ledger.outcome_of(t, v_err, NULL, false);
    END IF;

    IF p_timeout IS NULL THEN
        PERFORM ledger.apply_posted(t.id, d, c, p_amount, 0);
    ELSE
        UPDATE ledger.accounts SET debits_pending = debits_pending + p_amount, version = version + 1 WHERE id = p_debit;
        UPDATE ledger.accounts SET credits_pending = credits_pending + p_amount, version = version + 1 WHERE id = p_credit;
    END IF;
    RETURN ledger.outcome_of(t, NULL, NULL, false);
END
$$;

-- Post (fully or partly, the rest released) or void a pending hold, exactly once.
CREATE FUNCTION ledger.finalize_hold(
    p_id bigint, p_action text, p_amount numeric, p_owner text, p_enforce_owner boolean DEFAULT true
) RETURNS ledger.outcome
    LANGUAGE plpgsql AS $$
DECLARE
    d     ledger.accounts;
    c     ledger.accounts;
    t     ledger.transfers;
    v_pair ledger.accounts[];
    v_amt numeric;
BEGIN
    IF p_action NOT IN ('post', 'void') THEN
        RAISE EXCEPTION 'unknown action %', p_action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO t FROM ledger.transfers WHERE id = p_id AND status <> 'failed';
    IF NOT FOUND THEN
        RETURN ledger.outcome_of(NULL, 'transfer_not_found', NULL, false);
    END IF;
    v_pair := ledger.lock_pair(t.debit_account_id, t.credit_account_id);
    d := v_pair[1];
    c := v_pair[2];
    IF p_enforce_owner AND d.owner_id <> p_owner THEN
        RETURN ledger.outcome_of(NULL, 'transfer_not_found', NULL, false);
    END IF;
    SELECT * INTO t FROM ledger.transfers WHERE id = p_id FOR UPDATE;

    IF t.status = 'expired' THEN
        RETURN ledger.outcome_of(t, 'hold_expired', NULL, false);
    ELSIF t.status <> 'pending' THEN
        RETURN ledger.outcome_of(t, 'hold_finalized', NULL, false);
    ELSIF t.expires_at <= now() THEN
        t := ledger.release_hold(t, 'expired');
        RETURN ledger.outcome_of(t, 'hold_expired', NULL, false);
    END IF;

    IF p_action = 'void' THEN
        t := ledger.release_hold(t, 'voided');
        RETURN ledger.outcome_of(t, NULL, NULL, false);
    END IF;

    v_amt := coalesce(p_amount, t.hold_amount);
    IF v_amt <= 0 THEN
        RETURN ledger.outcome_of(t, 'invalid_amount', NULL, false);
    ELSIF v_amt > t.hold_amount THEN
        RETURN ledger.outcome_of(t, 'exceeds_hold', NULL, false);
    END IF;
    PERFORM ledger.apply_posted(t.id, d, c, v_amt, t.hold_amount);
    UPDATE ledger.transfers SET status = 'posted', amount = v_amt, finalized_at = now()
     WHERE id = p_id RETURNING * INTO t;
    RETURN ledger.outcome_of(t, NULL, NULL, false);
END
$$;

-- The first item (1-based) of a batch that would break its debit account's balance rule, with
-- the items applied in order (credits of earlier items count); NULL when every item fits.
CREATE FUNCTION ledger.batch_overdraft(
    p_debits bigint[], p_credits bigint[], p_amounts numeric[], p_timeouts integer[]
) RETURNS integer
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- PL/pgSQL on purpose: its plan is cached per session; a SQL function called from PL/pgSQL
    -- is planned again on every call.
    RETURN (SELECT min(l.i)::integer
      FROM (SELECT lg.i, lg.acct, lg.is_debit,
                   sum(lg.debit_amount) OVER w AS cum_debits,
                   sum(lg.credit_amount) OVER w AS cum_credits
              FROM (SELECT it.i, it.debit AS acct, true AS is_debit, it.amount AS debit_amount,
                           0::numeric AS credit_amount
                      FROM unnest(p_debits, p_amounts) WITH ORDINALITY AS it (debit, amount, i)
                    UNION ALL
                    SELECT it.i, it.credit, false, 0::numeric,
                           CASE WHEN it.timeout IS NULL THEN it.amount ELSE 0 END
                      FROM unnest(p_credits, p_amounts, p_timeouts) WITH ORDINALITY AS it (credit, amount, timeout, i)) lg
            WINDOW w AS (PARTITION BY lg.acct ORDER BY lg.i)) l
      JOIN ledger.accounts a ON a.id = l.acct
     WHERE l.is_debit AND a.debits_must_not_exceed_credits
       AND a.debits_pending + a.debits_posted + l.cum_debits > a.credits_posted + l.cum_credits);
END
$$;

-- An atomic batch: every transfer or none. Accounts are locked once, in id order; validation,
-- the balance rule (evaluated in item order) and the writes are set-based: each account is
-- updated once with its net change, transfers and entries are inserted in bulk.
CREATE FUNCTION ledger.create_transfers(
    p_owner text, p_refs text[], p_debits bigint[], p_credits bigint[], p_amounts numeric[],
    p_currencies text[], p_timeouts integer[], p_enforce_owner boolean DEFAULT true
) RETURNS SETOF ledger.outcome
    LANGUAGE plpgsql AS $$
DECLARE
    n       integer := cardinality(p_refs);
    v_err   text;
    v_idx   integer;
    v_ids   bigint[];
    v_rows  ledger.transfers[];
    v_total integer;
    v_same  integer;
    v_is_same boolean;
    v_bidx  integer;
    v_released integer;
    v_tid   bigint;
    t       ledger.transfers;
BEGIN
    IF n IS NULL OR n = 0 OR n > 100 OR cardinality(p_debits) <> n OR cardinality(p_credits) <> n
       OR cardinality(p_amounts) <> n OR cardinality(p_currencies) <> n OR cardinality(p_timeouts) <> n THEN
        RAISE EXCEPTION 'a batch holds 1 to 100 transfers, all arrays of one length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- References that exist already: a whole-batch replay, a pinned failure, or a conflict.
    -- One index scan answers the common case (all new) before any per-item work.
    IF EXISTS (SELECT 1 FROM ledger.transfers WHERE owner_id = p_owner AND reference = ANY (p_refs)) THEN
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
        RETURN;
    ELSIF v_total > 0 THEN
        -- The first item whose reference exists decides: its pinned failure, or a conflict.
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
        RETURN;
    END IF;
    END IF;

    -- Per-item validation, then the balance rule in item order; the first failing item decides.
    SELECT x.i, x.err INTO v_idx, v_err
      FROM (SELECT it.i,
                   CASE WHEN it.amount IS NULL OR it.amount <= 0 THEN 'invalid_amount'
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

    -- Everything above reads only what never changes (ownership, currency, existence: accounts are
    -- never deleted), so the locks come only now and a batch holds them for its writes alone.
    PERFORM 1 FROM ledger.accounts WHERE id = ANY (p_debits || p_credits) ORDER BY id FOR UPDATE;
    -- A batch that committed while we waited may have taken our references (an identical retry):
    -- start over, and the reference check above answers with the replay.
    IF EXISTS (SELECT 1 FROM ledger.transfers WHERE owner_id = p_owner AND reference = ANY (p_refs)) THEN
        RAISE EXCEPTION 'a reference of this batch was taken concurrently' USING ERRCODE = 'RP409';
    END IF;

    -- The balance rule in item order. When it fails, expired holds of the batch's accounts (all
    -- locked by us) no longer reserve funds: release them and look again, as a single transfer does.
    v_bidx := ledger.batch_overdraft(p_debits, p_credits, p_amounts, p_timeouts);
    IF v_bidx IS NOT NULL AND (v_idx IS NULL OR v_bidx < v_idx) THEN
        SELECT count(*) INTO v_released
          FROM (SELECT DISTINCT a.id FROM ledger.accounts a
                 WHERE a.id = ANY (p_debits) AND a.debits_pending > 0) x,
               LATERAL ledger.release_expired_debits(x.id, x.id) AS r
         WHERE r > 0;
        IF v_released > 0 THEN
            v_bidx := ledger.batch_overdraft(p_debits, p_credits, p_amounts, p_timeouts);
        END IF;
    END IF;
    -- The first failing item decides, whatever the reason.
    IF v_bidx IS NOT NULL AND (v_idx IS NULL OR v_bidx < v_idx) THEN
        v_idx := v_bidx;
        v_err := 'insufficient_funds';
    END IF;

    IF v_err IN ('invalid_amount', 'duplicate_reference') THEN
        RETURN NEXT ledger.outcome_of(NULL, v_err, v_idx - 1, false);  -- malformed: nothing to pin
        RETURN;
    ELSIF v_err IS NOT NULL THEN
        -- Pin the refusal to the failing item's reference; the rest of the batch stays unused.
        INSERT INTO ledger.transfers (owner_id, reference, debit_account_id, credit_account_id, currency,
                                      amount, hold_amount, timeout_seconds, status, error)
        VALUES (p_owner, p_refs[v_idx], p_debits[v_idx], p_credits[v_idx], p_currencies[v_idx],
                CASE WHEN p_timeouts[v_idx] IS NULL THEN p_amounts[v_idx] ELSE 0 END,
                CASE WHEN p_timeouts[v_idx] IS NULL THEN NULL ELSE p_amounts[v_idx] END,
                p_timeouts[v_idx], 'failed', v_err)
        ON CONFLICT (owner_id, reference) DO NOTHING
        RETURNING * INTO t;
        RETURN NEXT ledger.outcome_of(t, v_err, v_idx - 1, false);
        RETURN;
    END IF;

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
      INTO v_ids, v_rows
      FROM ins JOIN it ON it.ref = ins.reference;

    IF coalesce(cardinality(v_ids), 0) <> n THEN
        -- A concurrent request took one of these references after we looked: undo, let the caller retry.
        RAISE EXCEPTION 'a reference of this batch was taken concurrently' USING ERRCODE = 'RP409';
    END IF;

    WITH legs AS (
        SELECT it.i, it.id AS transfer_id, x.acct, x.direction, it.amount, it.timeout IS NULL AS posted
          FROM unnest(v_ids, p_debits, p_credits, p_amounts, p_timeouts)
               WITH ORDINALITY AS it (id, debit, credit, amount, timeout, i)
         CROSS JOIN LATERAL (VALUES (it.debit, 'debit'), (it.credit, 'credit')) AS x (acct, direction)
    ), numbered AS (
        SELECT l.*, a.last_hash AS init_hash,
               a.last_sequence + row_number() OVER w AS seq,
               a.credits_posted - a.debits_posted
                 + sum(CASE WHEN l.direction = 'credit' THEN l.amount ELSE -l.amount END) OVER w AS balance_after
          FROM legs l JOIN ledger.accounts a ON a.id = l.acct
         WHERE l.posted
        WINDOW w AS (PARTITION BY l.acct ORDER BY l.i)
    ), chained AS (
        SELECT nb.*, ledger.hash_chain(nb.init_hash, nb.acct, nb.seq, nb.transfer_id, nb.direction, nb.amount,
                                       nb.balance_after) OVER (PARTITION BY nb.acct ORDER BY nb.seq) AS hash
          FROM numbered nb
    ), ins_entries AS (
        INSERT INTO ledger.entries (account_id, sequence, transfer_id, direction, amount, balance_after, prev_hash, hash)
        SELECT ch.acct, ch.seq, ch.transfer_id, ch.direction, ch.amount, ch.balance_after,
               coalesce(lag(ch.hash) OVER (PARTITION BY ch.acct ORDER BY ch.seq), ch.init_hash), ch.hash
          FROM chained ch
    ), heads AS (
        SELECT DISTINCT ON (ch.acct) ch.acct, ch.seq, ch.hash FROM chained ch ORDER BY ch.acct, ch.seq DESC
    ), net AS (
        SELECT l.acct,
               sum(l.amount) FILTER (WHERE l.direction = 'debit' AND l.posted) AS debits_posted,
               sum(l.amount) FILTER (WHERE l.direction = 'debit' AND NOT l.posted) AS debits_pending,
               sum(l.amount) FILTER (WHERE l.direction = 'credit' AND l.posted) AS credits_posted,
               sum(l.amount) FILTER (WHERE l.direction = 'credit' AND NOT l.posted) AS credits_pending
          FROM legs l GROUP BY l.acct
    )
    UPDATE ledger.accounts a
       SET debits_posted = a.debits_posted + coalesce(net.debits_posted, 0),
           debits_pending = a.debits_pending + coalesce(net.debits_pending, 0),
           credits_posted = a.credits_posted + coalesce(net.credits_posted, 0),
           credits_pending = a.credits_pending + coalesce(net.credits_pending, 0),
           last_sequence = coalesce(heads.seq, a.last_sequence),
           last_hash = coalesce(heads.hash, a.last_hash),
           version = a.version + 1
      FROM net LEFT JOIN heads ON heads.acct = net.acct
     WHERE a.id = net.acct;

    RETURN QUERY
        SELECT o.* FROM unnest(v_rows) AS u, LATERAL ledger.outcome_of(u, NULL, NULL, false) o;  -- array order
END
$$;

-- Release up to p_limit expired holds. Candidates are read without locks, then every account
-- involved is locked in id order, then the holds (re-checked: a post may have won the race).
CREATE FUNCTION ledger.expire_holds(p_limit integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    v_ids   bigint[];
    v_accts bigint[];
    n       integer;
BEGIN
    SELECT array_agg(s.id), array_agg(s.debit_account_id) || array_agg(s.credit_account_id)
      INTO v_ids, v_accts
      FROM (SELECT id, debit_account_id, credit_account_id FROM ledger.transfers
             WHERE status = 'pending' AND expires_at <= now()
             ORDER BY expires_at LIMIT p_limit) s;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM ledger.accounts WHERE id = ANY (v_accts) ORDER BY id FOR UPDATE;
    WITH expired AS (
        UPDATE ledger.transfers SET status = 'expired', finalized_at = now()
         WHERE id = ANY (v_ids) AND status = 'pending' AND expires_at <= now()
        RETURNING debit_account_id, credit_account_id, hold_amount
    ), deltas AS (
        SELECT acct, sum(dp) AS dp, sum(cp) AS cp
          FROM (SELECT debit_account_id AS acct, hold_amount AS dp, 0 AS cp FROM expired
                UNION ALL
                SELECT credit_account_id, 0, hold_amount FROM expired) legs
         GROUP BY acct
    ), released AS (
        UPDATE ledger.accounts a
           SET debits_pending = a.debits_pending - deltas.dp,
               credits_pending = a.credits_pending - deltas.cp,
               version = a.version + 1
          FROM deltas WHERE a.id = deltas.acct
        RETURNING 1
    )
    SELECT count(*) INTO n FROM expired;
    RETURN n;
END
$$;
