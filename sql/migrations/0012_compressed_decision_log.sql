-- The decision log compressed by cmdb. A run's writes (findings, sightings, decisions) go
-- through one PostgreSQL backend one after the other; compressing ~20 MB of decisions per
-- 100k observations there (TOAST) kept the run's other core idle. cmdb now compresses each
-- block of 500 decisions (one LZ4 block, `decisions_bytes` long when decompressed) on the
-- core that encodes them, and PostgreSQL stores the bytes as they are (STORAGE EXTERNAL: no
-- second compression attempt). Rows written before this migration keep their text in
-- `decisions`; each row has exactly one of the two.
ALTER TABLE discovery_decisions ALTER COLUMN decisions DROP NOT NULL,
                                ADD COLUMN decisions_lz4 bytea,
                                ADD COLUMN decisions_bytes integer,
                                ADD CONSTRAINT ck_discovery_decisions_one_form CHECK (
                                  (decisions IS NULL) <> (decisions_lz4 IS NULL)
                                  AND (decisions_lz4 IS NULL) = (decisions_bytes IS NULL));
ALTER TABLE discovery_decisions ALTER COLUMN decisions_lz4 SET STORAGE EXTERNAL;
