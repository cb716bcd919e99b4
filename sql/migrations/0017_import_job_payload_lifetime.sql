-- A job's payload lives exactly as long as the job may still run: its chunks are deleted as
-- the job ends (succeeded, or failed, including a job failed because stopped instances
-- abandoned it three times), whoever ends it. A job queued again after a stopped instance
-- left it running starts its progress over.
CREATE FUNCTION cmdb_import_job_state() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state IN ('succeeded', 'failed') THEN
    DELETE FROM import_job_chunks WHERE job_id = NEW.id;
  ELSIF NEW.state = 'queued' AND OLD.state = 'running' THEN
    NEW.rows_done := 0;
    NEW.bytes_read := 0;
    NEW.phase := NULL;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER import_job_state BEFORE UPDATE OF state ON import_jobs
  FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state)
  EXECUTE FUNCTION cmdb_import_job_state();

DELETE FROM import_job_chunks c USING import_jobs j
  WHERE c.job_id = j.id AND j.state IN ('succeeded', 'failed');
