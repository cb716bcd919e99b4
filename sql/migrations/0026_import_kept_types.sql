-- The CI types whose identities an instance kept between imports (import/import_cache.hpp),
-- and when one last did. The cache lives in each instance's memory and a restart empties it;
-- at start an instance builds the entries of the types kept in the last two days again, in
-- the background (import/kept_warmup.hpp), so that the first nightly sync after a restart
-- matches against kept identities instead of reading the type whole on its request. Written
-- after an import commits, at most twice a day per type and instance.
CREATE TABLE import_kept_types (
  type    text PRIMARY KEY REFERENCES ci_types (name) ON DELETE CASCADE,
  kept_at timestamptz NOT NULL
);
