-- Ramps III: a paused ramp remembers where it paused (an operator's resume goes back there) and
-- how many recovery executions it had ({ramp_id}--r{n}).
-- depends: 0012.ramp-execution

ALTER TABLE ramps.ramps
    ADD COLUMN resume_at text CHECK (resume_at ~ '^[a-z_]{1,32}$'),
    ADD COLUMN recoveries integer NOT NULL DEFAULT 0 CHECK (recoveries >= 0);

GRANT UPDATE (resume_at, task_token, task_phase) ON ramps.ramps TO rampart_ramp_worker;
GRANT UPDATE (status, recoveries, resume_at, errors) ON ramps.ramps TO rampart_ramps;
GRANT SELECT (task_token, task_phase, resume_at, recoveries) ON ramps.ramps TO rampart_ramps;
