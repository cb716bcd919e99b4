-- Incident traces look for changes completed within a look-back window before the incident
-- started: a range of completion events. Without this index every trace read the whole
-- change_events table, which grows with every transition ever made.
CREATE INDEX ix_change_events_state_at ON change_events (to_state, at);
