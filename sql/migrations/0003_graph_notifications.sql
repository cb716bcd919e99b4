-- Every committed change to CIs or relations notifies channel cmdb_graph, so each cmdb
-- instance knows when its in-memory dependency graph is out of date. NOTIFY is delivered only
-- on commit, and once per transaction and payload, so bulk imports send one message.
CREATE FUNCTION cmdb_notify_graph() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('cmdb_graph', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

CREATE TRIGGER tr_configuration_items_graph
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON configuration_items
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_notify_graph();

CREATE TRIGGER tr_relations_graph
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON relations
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_notify_graph();

CREATE TRIGGER tr_relation_types_graph
  AFTER INSERT OR UPDATE OR DELETE ON relation_types
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_notify_graph();
