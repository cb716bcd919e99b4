-- The CI rows of a JSON import job's payload, counted as the body was checked on its way in
-- (NULL for a CSV payload, and for jobs queued before this migration). The job tells its
-- importer, which then decides per type as a synchronous import does: a type whose CIs the
-- payload names at least half of is read whole once and its identities kept for the next
-- import (the nightly sync), though the rows come in batches of 20,000.
ALTER TABLE import_jobs ADD COLUMN ci_rows bigint;
