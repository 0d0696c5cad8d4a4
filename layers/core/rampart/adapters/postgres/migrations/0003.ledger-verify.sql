-- Rampart ledger: the audit. Returns one row per broken invariant; no rows means the ledger holds.
-- depends: 0002.ledger-functions

CREATE FUNCTION ledger.verify() RETURNS TABLE (check_name text, detail text)
    LANGUAGE sql STABLE AS $$
    -- Double entry: per currency, debits equal credits, posted and pending alike.
    SELECT 'double_entry', format('%s: debits posted %s / pending %s, credits posted %s / pending %s',
                                  s.currency, s.dp, s.dpe, s.cp, s.cpe)
      FROM (SELECT currency, sum(debits_posted) AS dp, sum(debits_pending) AS dpe,
                   sum(credits_posted) AS cp, sum(credits_pending) AS cpe
              FROM ledger.accounts GROUP BY currency) s
     WHERE s.dp <> s.cp OR s.dpe <> s.cpe
    UNION ALL
    -- Posted balances are the fold of the account's entries; the sequence has no gaps.
    SELECT 'entries_fold', format('account %s: posted debits %s credits %s, entries debits %s credits %s, '
                                  'last_sequence %s, %s entries up to %s',
                                  a.id, a.debits_posted, a.credits_posted, coalesce(e.d, 0), coalesce(e.c, 0),
                                  a.last_sequence, coalesce(e.n, 0), coalesce(e.m, 0))
      FROM ledger.accounts a
      LEFT JOIN (SELECT account_id,
                        sum(amount) FILTER (WHERE direction = 'debit') AS d,
                        sum(amount) FILTER (WHERE direction = 'credit') AS c,
                        count(*) AS n, max(sequence) AS m
                   FROM ledger.entries GROUP BY account_id) e ON e.account_id = a.id
     WHERE coalesce(e.d, 0) <> a.debits_posted OR coalesce(e.c, 0) <> a.credits_posted
        OR coalesce(e.n, 0) <> a.last_sequence OR coalesce(e.m, 0) <> a.last_sequence
    UNION ALL
    -- Pending balances are exactly the open holds.
    SELECT 'pending_fold', format('account %s: pending debits %s credits %s, open holds debit %s credit %s',
                                  a.id, a.debits_pending, a.credits_pending, coalesce(h.d, 0), coalesce(h.c, 0))
      FROM ledger.accounts a
      LEFT JOIN (SELECT acct, sum(d) AS d, sum(c) AS c
                   FROM (SELECT debit_account_id AS acct, hold_amount AS d, 0 AS c
                           FROM ledger.transfers WHERE status = 'pending'
                         UNION ALL
                         SELECT credit_account_id, 0, hold_amount
                           FROM ledger.transfers WHERE status = 'pending') x
                  GROUP BY acct) h ON h.acct = a.id
     WHERE coalesce(h.d, 0) <> a.debits_pending OR coalesce(h.c, 0) <> a.credits_pending
    UNION ALL
    -- Every entry: linked to its predecessor, hashed over it, with the running balance after it.
    SELECT 'entry_chain', format('account %s sequence %s: %s', x.account_id, x.sequence,
                                 CASE WHEN x.prev_hash <> coalesce(x.prev, ledger.genesis_hash()) THEN 'broken link'
                                      WHEN x.balance_after <> x.running THEN 'wrong balance_after'
                                      ELSE 'hash mismatch' END)
      FROM (SELECT e.*, lag(e.hash) OVER w AS prev,
                   sum(CASE e.direction WHEN 'credit' THEN e.amount ELSE -e.amount END) OVER w AS running
              FROM ledger.entries e
            WINDOW w AS (PARTITION BY e.account_id ORDER BY e.sequence)) x
     WHERE x.prev_hash <> coalesce(x.prev, ledger.genesis_hash())
        OR x.balance_after <> x.running
        OR x.hash <> ledger.entry_hash(x.prev_hash, x.account_id, x.sequence, x.transfer_id, x.direction,
                                       x.amount, x.balance_after)
    UNION ALL
    -- The account's chain head is its last entry.
    SELECT 'chain_head', format('account %s: head does not match its last entry', a.id)
      FROM ledger.accounts a
      LEFT JOIN ledger.entries e ON e.account_id = a.id AND e.sequence = a.last_sequence
     WHERE a.last_hash <> coalesce(e.hash, ledger.genesis_hash())
    UNION ALL
    -- Each transfer has exactly the entries its status implies.
    SELECT 'transfer_entries', format('transfer %s (%s, amount %s): %s entries', t.id, t.status, t.amount,
                                      coalesce(e.n, 0))
      FROM ledger.transfers t
      LEFT JOIN (SELECT en.transfer_id, count(*) AS n,
                        bool_and(en.amount = t2.amount AND en.account_id = CASE en.direction WHEN 'debit'
                                 THEN t2.debit_account_id ELSE t2.credit_account_id END) AS ok,
                        count(*) FILTER (WHERE en.direction = 'debit') AS nd
                   FROM ledger.entries en JOIN ledger.transfers t2 ON t2.id = en.transfer_id
                  GROUP BY en.transfer_id) e ON e.transfer_id = t.id
     WHERE CASE WHEN t.status = 'posted' AND t.amount > 0 THEN NOT (e.n = 2 AND e.nd = 1 AND e.ok)
                ELSE coalesce(e.n, 0) <> 0 END
    UNION ALL
    -- Wallets never go below zero, counting holds.
    SELECT 'balance_rule', format('account %s is overdrawn', a.id)
      FROM ledger.accounts a
     WHERE a.debits_must_not_exceed_credits AND a.debits_pending + a.debits_posted > a.credits_posted
$$;
