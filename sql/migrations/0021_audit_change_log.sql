-- The audit worker keeps the estate it evaluated between runs and brings it up to date from
-- graph_changes, as the graph cache does. The graph's own entries cover CIs inserted and
-- deleted, graph columns updated and relations; the audit also reads owners, tags,
-- attributes and update times, and discovery sightings. Two more kinds:
--   'ci_data'  every CI an UPDATE statement wrote (one row per statement, its ids);
--   'sighting' a statement changed sightings (the latest sighting of CIs is re-read).
-- The graph cache reads only 'ci', 'relation' and 'all'.
ALTER TABLE graph_changes DROP CONSTRAINT ck_graph_changes_kind;
ALTER TABLE graph_changes ADD CONSTRAINT ck_graph_changes_kind
  CHECK (kind IN ('ci', 'relation', 'all', 'ci_data', 'sighting'));

CREATE FUNCTION cmdb_log_sighting_change() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO graph_changes (kind) VALUES ('sighting');
  RETURN NULL;
END
$$;

CREATE TRIGGER tr_configuration_items_log_data AFTER UPDATE ON configuration_items
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_log_graph_rows('ci_data');

CREATE TRIGGER tr_discovery_sightings_log AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
  ON discovery_sightings
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_log_sighting_change();
CREATE TRIGGER tr_discovery_sighting_blocks_log AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
  ON discovery_sighting_blocks
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_log_sighting_change();
-- A source's sighted_at dates every bit of its blocks.
CREATE TRIGGER tr_discovery_sources_log_sighted AFTER UPDATE OF sighted_at ON discovery_sources
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_log_sighting_change();
