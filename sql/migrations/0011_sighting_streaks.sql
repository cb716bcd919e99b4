-- Sightings written as changes, not as a rewrite of every row per run. A row with `streak`
-- set means "seen by every writing run of its source since last_run_id, including the
-- source's latest" (discovery_sources.sighted_run_id / sighted_at): a run that sees what the
-- previous run saw writes nothing for it. A run writes only the CIs it sees that the previous
-- run did not (streak opened: last_run_id / last_seen_at = this run) and the CIs the previous
-- run saw that it does not (streak closed: last_run_id / last_seen_at = the previous run).
-- A CI's last_seen_at is therefore sighted_at of the source for a streak row and
-- last_seen_at otherwise. Rows written before this migration have streak = false and keep
-- their meaning. Deleting a source closes its streaks first (sightings outlive sources).
ALTER TABLE discovery_sightings ADD COLUMN streak boolean NOT NULL DEFAULT false;
ALTER TABLE discovery_sources ADD COLUMN sighted_run_id bigint,
                              ADD COLUMN sighted_at timestamptz;
-- A run reads its source's sightings (ci_id, streak) to work out what changed. Neither column
-- of this index is ever updated, so closing and opening streaks stay HOT updates.
CREATE INDEX ix_discovery_sightings_source ON discovery_sightings (source_id, ci_id);

-- The decision log is written by cmdb and only read back by cmdb, which parses each block
-- itself: store it as text and skip PostgreSQL's JSON validation of ~20 MB per 100k
-- observations (about a third of the COPY). Still an array of JSON objects in input order.
ALTER TABLE discovery_decisions ALTER COLUMN decisions TYPE text USING decisions::text;
DO $$
BEGIN
  ALTER TABLE discovery_decisions ALTER COLUMN decisions SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;  -- a server built without lz4 keeps the default (pglz)
END
$$;

-- Every run updates each open finding it observes again (last_run_id, observed_at, whether a
-- change authorises it): none of those columns is indexed, so with room left on each page the
-- updates are HOT (no new entries in the four indexes). 20k findings re-observed: 500 ms at
-- fillfactor 100, 220 ms at 70. Pages written before this migration fill up as they were.
ALTER TABLE drift_findings SET (fillfactor = 70);
