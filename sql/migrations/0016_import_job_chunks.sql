-- A background import's payload is stored as it arrives, in chunks of up to 1 MiB, and read
-- back as a stream by the job: neither the request nor the job holds the whole body, so a job
-- of millions of rows runs in bounded memory. The upload and the job's row commit together:
-- a client that goes away mid-upload leaves nothing behind. Chunks are dropped once the job
-- has finished. Progress also counts the rows written and the payload bytes read so far.
CREATE TABLE import_job_chunks (
  job_id bigint NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
  seq    integer NOT NULL,
  data   bytea NOT NULL,
  PRIMARY KEY (job_id, seq)
);

INSERT INTO import_job_chunks (job_id, seq, data)
  SELECT id, 0, payload FROM import_jobs WHERE payload IS NOT NULL;
ALTER TABLE import_jobs DROP COLUMN payload;
ALTER TABLE import_jobs ADD COLUMN rows_done bigint NOT NULL DEFAULT 0,
                        ADD COLUMN bytes_read bigint NOT NULL DEFAULT 0;
