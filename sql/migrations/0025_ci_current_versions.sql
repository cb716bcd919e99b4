-- A CI's current version is the CI itself, as 0023 made it for relations. Every CI had one
-- version row in ci_versions that copied its own row plus who wrote it: a second row, heap and
-- two index entries per CI on the path of every write, and about a tenth of a bulk import's
-- time. Now:
-- * configuration_items carries what that version row added (changed_by, source, diff: NULL
--   for a creation, whose diff the reader derives from the values);
-- * ci_versions keeps the versions that ended: written when a CI changes (the version it had,
--   closed at the change) or is deleted (that, and the tombstone); valid_to is never NULL
--   there any more;
-- * ci_history is the whole history, ended and current, with ci_versions' columns: readers of
--   a CI's history or of the estate as of an instant read it instead.
-- A CI inserted by SQL without these columns is recorded as written by the session's user
-- from source 'sql'; before, it had no history at all.

ALTER TABLE configuration_items
  ADD COLUMN changed_by text NOT NULL DEFAULT session_user,
  ADD COLUMN source text NOT NULL DEFAULT 'sql',
  ADD COLUMN diff jsonb;

UPDATE configuration_items c SET changed_by = v.changed_by, source = v.source, diff = v.diff
  FROM ci_versions v WHERE v.ci_id = c.id AND v.valid_to IS NULL AND NOT v.deleted;
DELETE FROM ci_versions v USING configuration_items c
  WHERE v.ci_id = c.id AND v.valid_to IS NULL AND NOT v.deleted;
-- A current version whose CI is gone, or an open tombstone (none is written so): closed for
-- the constraint.
UPDATE ci_versions SET valid_to = valid_from WHERE valid_to IS NULL;

DROP INDEX ux_ci_versions_current;
ALTER TABLE ci_versions ALTER COLUMN valid_to SET NOT NULL;

CREATE VIEW ci_history AS
  SELECT ci_id, version, deleted, type, name, status, owner, tags, attributes, min_healthy,
         valid_from, valid_to, changed_by, source, diff
    FROM ci_versions
  UNION ALL
  SELECT id, version, false, type, name, status, owner, tags, attributes, min_healthy,
         updated_at, NULL::timestamptz, changed_by, source, diff
    FROM configuration_items;
