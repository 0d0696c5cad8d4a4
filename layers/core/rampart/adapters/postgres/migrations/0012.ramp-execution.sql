-- Ramps III: what a ramp's execution writes on the ramp (its phases, errors, transactions, end)
-- and reads of the rail state (the payment it waits for); the webhook path reads the token of the
-- task that waits for a payment, to complete it.
-- depends: 0011.journal

GRANT UPDATE (status, phase, history, errors, transactions, refund, updated_at) ON ramps.ramps TO rampart_ramp_worker;
GRANT SELECT ON ramps.ephemerals TO rampart_ramp_worker;
GRANT UPDATE (active) ON ramps.ephemerals TO rampart_ramp_worker;
GRANT USAGE ON SCHEMA rails TO rampart_ramp_worker;
GRANT SELECT ON rails.payments, rails.operations TO rampart_ramp_worker;

GRANT USAGE ON SCHEMA ramps TO rampart_webhook_apply;
GRANT SELECT ON ramps.ramps, ramps.quotes TO rampart_webhook_apply;  -- the ramp whose payment wait it completes

-- ramps (the API): the reconciliation reads every mirrored account and its ledger balance.
GRANT USAGE ON SCHEMA journal, ledger TO rampart_ramps;
GRANT SELECT ON journal.mirrors TO rampart_ramps;
GRANT SELECT ON ledger.accounts TO rampart_ramps;
