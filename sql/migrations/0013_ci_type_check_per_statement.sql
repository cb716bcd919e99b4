-- A CI's type must name a row of ci_types. The foreign key checked that with a trigger per
-- inserted row (a look-up and a row lock per CI: 0.6-1.0 s of a 100k-CI import's ~3.5 s
-- COPY). The same guarantee is now checked once per statement: the distinct types of the
-- inserted rows are locked FOR KEY SHARE, as the foreign key did, and every one must exist.
--
-- Why this is as strict as the foreign key:
-- * an insert whose type was deleted by a transaction that committed first finds no row to
--   lock (READ COMMITTED skips it, REPEATABLE READ fails with a serialization error) and is
--   refused;
-- * a delete of a type that an uncommitted insert has locked waits for that insert (the
--   BEFORE DELETE trigger runs once the row lock is granted), then sees its CIs (each query
--   of a volatile function takes a new snapshot in READ COMMITTED) and is refused. Under
--   REPEATABLE READ or SERIALIZABLE the deleting transaction's snapshot could miss those
--   CIs, so deleting or renaming a CI type is only allowed in READ COMMITTED (cmdb's level).
-- cmdb itself also checks before it deletes a type (409 with the number of CIs using it).

ALTER TABLE configuration_items DROP CONSTRAINT fk_configuration_items_type;

CREATE FUNCTION cmdb_check_ci_types_of_rows() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  wanted text[];
  locked integer;
  missing text;
BEGIN
  -- checked_rows: the statement's inserted rows (transition table).
  SELECT array_agg(DISTINCT type) INTO wanted FROM checked_rows;
  IF wanted IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT count(*) INTO locked
    FROM (SELECT 1 FROM ci_types WHERE name = ANY (wanted) FOR KEY SHARE) l;
  IF locked <> cardinality(wanted) THEN
    SELECT string_agg(quote_literal(w), ', ') INTO missing
      FROM unnest(wanted) w WHERE NOT EXISTS (SELECT 1 FROM ci_types t WHERE t.name = w);
    RAISE foreign_key_violation USING
      MESSAGE = format('CI type %s does not exist', coalesce(missing, '(deleted concurrently)')),
      TABLE = 'configuration_items', COLUMN = 'type';
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION cmdb_check_ci_type_of_row() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM ci_types WHERE name = NEW.type FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('CI type %s does not exist', quote_literal(NEW.type)),
      TABLE = 'configuration_items', COLUMN = 'type';
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION cmdb_check_ci_type_unused() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE object_not_in_prerequisite_state USING
      MESSAGE = 'CI types are deleted or renamed in READ COMMITTED transactions only';
  END IF;
  IF EXISTS (SELECT 1 FROM configuration_items WHERE type = OLD.name) THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('CI type %s is used by CIs', quote_literal(OLD.name)),
      TABLE = 'ci_types';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER tr_configuration_items_type_insert AFTER INSERT ON configuration_items
  REFERENCING NEW TABLE AS checked_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cmdb_check_ci_types_of_rows();
CREATE TRIGGER tr_configuration_items_type_update AFTER UPDATE OF type ON configuration_items
  FOR EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type)
  EXECUTE FUNCTION cmdb_check_ci_type_of_row();
CREATE TRIGGER tr_ci_types_in_use BEFORE DELETE ON ci_types
  FOR EACH ROW EXECUTE FUNCTION cmdb_check_ci_type_unused();
CREATE TRIGGER tr_ci_types_renamed BEFORE UPDATE OF name ON ci_types
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
  EXECUTE FUNCTION cmdb_check_ci_type_unused();
