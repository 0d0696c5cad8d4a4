-- Rampart ledger: the ledger limit. Every amount and every balance stays within 2^256 - 1 base
-- units (115792089237316195423570985008687907853269984665640564039457584007913129639935),
-- refused with a code like any other refusal, so no caller can get past it:
--   amount_limit   an amount beyond the limit (malformed: nothing pinned, it could not be stored);
--   balance_limit  a transfer whose debit or credit would take an account's debits (posted +
--                  pending) or credits (posted + pending) past the limit (pinned to its reference,
--                  as insufficient_funds is).
-- Holds count when created: an account's posted + pending sides stay within the limit, so posting
-- a hold (pending → posted, never more than held) can never cross it, and finalize_hold needs no
-- check. The checks read the account rows each function already locks and reads (no extra
-- statement per transfer); the accounts CHECK backstops the same rule.
-- depends: 0004.auth

-- One combined CHECK per hot table (see 0001): the limit joins the existing rules.
ALTER TABLE ledger.accounts DROP CONSTRAINT accounts_rules;
ALTER TABLE ledger.accounts ADD CONSTRAINT accounts_rules CHECK (
    debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0
    AND (NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted)
    AND (NOT is_system OR name IS NOT NULL)
    AND debits_posted + debits_pending <= 115792089237316195423570985008687907853269984665640564039457584007913129639935
    AND credits_posted + credits_pending <= 115792089237316195423570985008687907853269984665640564039457584007913129639935);

-- The first item (1-based) of a batch that would break its debit account's balance rule
-- ('insufficient_funds') or take an account past the ledger limit ('balance_limit'), the items
-- applied in order (credits of earlier items count for the balance rule); no row when all fit.
CREATE FUNCTION ledger.batch_refusal(
    p_debits bigint[], p_credits bigint[], p_amounts numeric[], p_timeouts integer[]
) RETURNS TABLE (i integer, err text)
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- PL/pgSQL on purpose (as batch_overdraft): its plan is cached per session.
    RETURN QUERY
    SELECT l.i::integer,
           CASE WHEN l.is_debit AND a.debits_must_not_exceed_credits
                     AND a.debits_pending + a.debits_posted + l.cum_debits > a.credits_posted + l.cum_credits
                THEN 'insufficient_funds' ELSE 'balance_limit' END
      FROM (SELECT lg.i, lg.acct, lg.is_debit,
                   sum(lg.debit_amount) OVER w AS cum_debits,
                   sum(lg.credit_amount) OVER w AS cum_credits,
                   sum(lg.credit_all) OVER w AS cum_credits_all
              FROM (SELECT it.i, it.debit AS acct, true AS is_debit, it.amount AS debit_amount,
                           0::numeric AS credit_amount, 0::numeric AS credit_all
                      FROM unnest(p_debits, p_amounts) WITH ORDINALITY AS it (debit, amount, i)
                    UNION ALL
                    SELECT it.i, it.credit, false, 0::numeric,
                           CASE WHEN it.timeout IS NULL THEN it.amount ELSE 0 END, it.amount
                      FROM unnest(p_credits, p_amounts, p_timeouts) WITH ORDINALITY AS it (credit, amount, timeout, i)) lg
            WINDOW w AS (PARTITION BY lg.acct ORDER BY lg.i)) l
      JOIN ledger.accounts a ON a.id = l.acct
     WHERE (l.is_debit AND a.debits_must_not_exceed_credits
            AND a.debits_pending + a.debits_posted + l.cum_debits > a.credits_posted + l.cum_credits)
        OR (l.is_debit AND a.debits_posted + a.debits_pending + l.cum_debits > 115792089237316195423570985008687907853269984665640564039457584007913129639935)
        OR (NOT l.is_debit AND a.credits_posted + a.credits_pending + l.cum_credits_all > 115792089237316195423570985008687907853269984665640564039457584007913129639935)
     ORDER BY l.i, l.is_debit DESC  -- an item's debit leg first: its balance rule outranks the limit
     LIMIT 1;
END
$$;

CREATE OR REPLACE FUNCTION ledger.create_transfer(
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
    ELSIF p_amount > 115792089237316195423570985008687907853269984665640564039457584007913129639935 THEN
        RETURN ledger.outcome_of(NULL, 'amount_limit', NULL, false);  -- 2^256 - 1: nothing to pin (nor storable)
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
        -- The ledger limit, on the rows already locked and read: no statement of its own.
        IF v_err IS NULL
           AND greatest(d.debits_posted + d.debits_pending, c.credits_posted + c.credits_pending) + p_amount
               > 115792089237316195423570985008687907853269984665640564039457584007913129639935 THEN
            v_err := 'balance_limit';
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

CREATE OR REPLACE FUNCTION ledger.create_transfers(
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
    v_berr  text;
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

    -- Everything above reads only what never changes (ownership, currency, existence: accounts are
    -- never deleted), so the locks come only now and a batch holds them for its writes alone.
    PERFORM 1 FROM ledger.accounts WHERE id = ANY (p_debits || p_credits) ORDER BY id FOR UPDATE;
    -- A batch that committed while we waited may have taken our references (an identical retry):
    -- start over, and the reference check above answers with the replay.
    IF EXISTS (SELECT 1 FROM ledger.transfers WHERE owner_id = p_owner AND reference = ANY (p_refs)) THEN
        RAISE EXCEPTION 'a reference of this batch was taken concurrently' USING ERRCODE = 'RP409';
    END IF;

    -- The balance rule and the ledger limit in item order (one query). When either fails, expired
    -- holds of the batch's accounts (all locked by us) no longer reserve funds: release them and
    -- look again, as a single transfer does.
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

    IF v_err IN ('invalid_amount', 'amount_limit', 'duplicate_reference') THEN
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
