-- Only writes that change the dependency graph notify channel cmdb_graph: a CI created,
-- deleted, or updated in a column the graph holds (type, name, status, min_healthy). Updates
-- of attributes, owner or tags -- most writes: patches, discovery filling records, accepted
-- drift, completed changes -- no longer make every instance reload its graph.
DROP TRIGGER tr_configuration_items_graph ON configuration_items;

CREATE TRIGGER tr_configuration_items_graph
  AFTER INSERT OR DELETE OR TRUNCATE ON configuration_items
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_notify_graph();

-- Row level, so the WHEN clause can compare; NOTIFY folds the repeats of one transaction.
CREATE TRIGGER tr_configuration_items_graph_update
  AFTER UPDATE ON configuration_items
  FOR EACH ROW
  WHEN (OLD.type IS DISTINCT FROM NEW.type OR OLD.name IS DISTINCT FROM NEW.name OR
        OLD.status IS DISTINCT FROM NEW.status OR OLD.min_healthy IS DISTINCT FROM NEW.min_healthy)
  EXECUTE FUNCTION cmdb_notify_graph();
