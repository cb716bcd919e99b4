-- A relation's type and ends were foreign keys: three look-ups and row locks per inserted row,
-- most of a relation import's time. They are now checked once per statement, as
-- 0013_ci_type_check_per_statement.sql does for CI types: the distinct relation types and the
-- distinct CIs of the inserted rows are locked FOR KEY SHARE, as the foreign keys did, and
-- every one must exist.
--
-- Why this is as strict as the foreign keys, for any writer:
-- * an insert naming a CI (or relation type) that a transaction deleted and committed first
--   finds no row to lock (READ COMMITTED skips it, REPEATABLE READ fails with a serialization
--   error) and is refused;
-- * a delete of a CI that an uncommitted insert has locked waits for that insert (the BEFORE
--   DELETE trigger runs once the row lock is granted), then sees its relations (each query of
--   a volatile function takes a new snapshot in READ COMMITTED) and is refused. Under
--   REPEATABLE READ or SERIALIZABLE the deleting transaction's snapshot could miss them, so a
--   CI or a relation type is deleted (or its key changed) in READ COMMITTED only (cmdb's
--   level; cmdb deletes a CI's relations, with their history, before the CI);
-- * TRUNCATE of configuration_items or relation_types is refused while relations remain
--   (checked after the command, so truncating relations in the same command is fine).
--
-- The history of a relation created by an import no longer carries its creation diff: like a
-- CI's (0001), a creation's diff is NULL and the reader derives it from the version's values.
--
-- Indexes a bulk insert pays for and no query used: the unique key now leads with from_ci, so
-- it also serves the look-ups by from_ci that ix_relations_from_ci did (a CI's relations, the
-- delete of a CI); relation_versions' indexes on from_ci and to_ci served no query (history is
-- read by relation, the graph as of an instant by a full scan).

ALTER TABLE relations
  DROP CONSTRAINT fk_relations_type,
  DROP CONSTRAINT fk_relations_from_ci,
  DROP CONSTRAINT fk_relations_to_ci;

ALTER TABLE relation_versions ALTER COLUMN diff DROP NOT NULL;

ALTER TABLE relations
  DROP CONSTRAINT uq_relations_type_from_to,
  ADD CONSTRAINT uq_relations_from_to_type UNIQUE (from_ci, to_ci, type);
DROP INDEX ix_relations_from_ci;
DROP INDEX ix_relation_versions_from_ci;
DROP INDEX ix_relation_versions_to_ci;

CREATE FUNCTION cmdb_check_relation_rows() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  types text[];
  cis bigint[];
  locked integer;
  missing text;
BEGIN
  -- checked_rows: the statement's inserted rows (transition table).
  SELECT array_agg(DISTINCT type) INTO types FROM checked_rows;
  IF types IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT count(*) INTO locked
    FROM (SELECT 1 FROM relation_types WHERE name = ANY (types) FOR KEY SHARE) l;
  IF locked <> cardinality(types) THEN
    SELECT string_agg(quote_literal(t), ', ') INTO missing
      FROM unnest(types) t WHERE NOT EXISTS (SELECT 1 FROM relation_types r WHERE r.name = t);
    RAISE foreign_key_violation USING
      MESSAGE = format('relation type %s does not exist', coalesce(missing, '(deleted concurrently)')),
      TABLE = 'relations', COLUMN = 'type';
  END IF;
  SELECT array_agg(id) INTO cis
    FROM (SELECT from_ci AS id FROM checked_rows UNION SELECT to_ci FROM checked_rows) e;
  SELECT count(*) INTO locked
    FROM (SELECT 1 FROM configuration_items WHERE id = ANY (cis) FOR KEY SHARE) l;
  IF locked <> cardinality(cis) THEN
    SELECT string_agg(c::text, ', ') INTO missing
      FROM (SELECT c FROM unnest(cis) c
            WHERE NOT EXISTS (SELECT 1 FROM configuration_items i WHERE i.id = c)
            ORDER BY c LIMIT 10) m;
    RAISE foreign_key_violation USING
      MESSAGE = format('CI %s does not exist', coalesce(missing, '(deleted concurrently)')),
      TABLE = 'relations', COLUMN = 'from_ci';
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION cmdb_check_relation_row() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM relation_types WHERE name = NEW.type FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('relation type %s does not exist', quote_literal(NEW.type)),
      TABLE = 'relations', COLUMN = 'type';
  END IF;
  PERFORM 1 FROM configuration_items WHERE id IN (NEW.from_ci, NEW.to_ci) FOR KEY SHARE;
  IF NOT EXISTS (SELECT 1 FROM configuration_items WHERE id = NEW.from_ci)
     OR NOT EXISTS (SELECT 1 FROM configuration_items WHERE id = NEW.to_ci) THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('CI %s does not exist',
                       CASE WHEN EXISTS (SELECT 1 FROM configuration_items WHERE id = NEW.from_ci)
                            THEN NEW.to_ci ELSE NEW.from_ci END),
      TABLE = 'relations', COLUMN = 'from_ci';
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION cmdb_check_ci_unreferenced() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE object_not_in_prerequisite_state USING
      MESSAGE = 'CIs are deleted, or their ids changed, in READ COMMITTED transactions only';
  END IF;
  IF EXISTS (SELECT 1 FROM relations WHERE from_ci = OLD.id)
     OR EXISTS (SELECT 1 FROM relations WHERE to_ci = OLD.id) THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('CI %s has relations; delete them first', OLD.id),
      TABLE = 'configuration_items';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$;

CREATE FUNCTION cmdb_check_relation_type_unused() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE object_not_in_prerequisite_state USING
      MESSAGE = 'relation types are deleted or renamed in READ COMMITTED transactions only';
  END IF;
  IF EXISTS (SELECT 1 FROM relations WHERE type = OLD.name) THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('relation type %s is used by relations', quote_literal(OLD.name)),
      TABLE = 'relation_types';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$;

CREATE FUNCTION cmdb_check_no_relations_left() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM relations) THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('%s cannot be truncated while relations remain', TG_TABLE_NAME),
      TABLE = TG_TABLE_NAME;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER tr_relations_check_insert AFTER INSERT ON relations
  REFERENCING NEW TABLE AS checked_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_check_relation_rows();
CREATE TRIGGER tr_relations_check_update AFTER UPDATE OF type, from_ci, to_ci ON relations
  FOR EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type OR OLD.from_ci IS DISTINCT FROM NEW.from_ci
                     OR OLD.to_ci IS DISTINCT FROM NEW.to_ci)
  EXECUTE FUNCTION cmdb_check_relation_row();
CREATE TRIGGER tr_configuration_items_unreferenced_delete BEFORE DELETE ON configuration_items
  FOR EACH ROW EXECUTE FUNCTION cmdb_check_ci_unreferenced();
CREATE TRIGGER tr_configuration_items_unreferenced_id BEFORE UPDATE OF id ON configuration_items
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
  EXECUTE FUNCTION cmdb_check_ci_unreferenced();
CREATE TRIGGER tr_configuration_items_truncate_check AFTER TRUNCATE ON configuration_items
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_check_no_relations_left();
CREATE TRIGGER tr_relation_types_unused_delete BEFORE DELETE ON relation_types
  FOR EACH ROW EXECUTE FUNCTION cmdb_check_relation_type_unused();
CREATE TRIGGER tr_relation_types_unused_rename BEFORE UPDATE OF name ON relation_types
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
  EXECUTE FUNCTION cmdb_check_relation_type_unused();
CREATE TRIGGER tr_relation_types_truncate_check AFTER TRUNCATE ON relation_types
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_check_no_relations_left();
