-- Open sighting streaks as bitmaps. Since 0011 a row of discovery_sightings with `streak` set
-- meant "seen by every writing run of its source since last_run_id, including the latest";
-- the first run of a source seeing 100k CIs still wrote 100k such rows (0.4-0.6 s: the heap
-- and two btrees), the largest phase of that run. An open streak now is one bit: a row of
-- discovery_sighting_blocks holds, for one source and one block of 1024 consecutive CI ids
-- (block = ci_id >> 10), the bit (ci_id & 1023) of every CI of the block in an open streak,
-- numbered from the left as get_bit does. A first run of 100k CIs writes ~100 such rows.
--
-- A CI's last_seen_at by a source is therefore the source's sighted_at when its bit is set,
-- and the row of discovery_sightings otherwise: rows there are closed streaks only ("last
-- seen by run last_run_id at last_seen_at"). Never both: a CI whose streak reopens loses its
-- row. Deleting a source turns its bits into rows at its sighted_at first (sightings outlive
-- sources; the foreign key refuses to drop the bits with the source).
CREATE TABLE discovery_sighting_blocks (
  source_id  bigint NOT NULL
             CONSTRAINT fk_discovery_sighting_blocks_source REFERENCES discovery_sources (id),
  block      bigint NOT NULL,
  bits       bit(1024) NOT NULL,
  CONSTRAINT pk_discovery_sighting_blocks PRIMARY KEY (block, source_id)
);
-- A run reads its source's blocks; a CI read goes through the primary key.
CREATE INDEX ix_discovery_sighting_blocks_source ON discovery_sighting_blocks (source_id, block);

-- B'1'::bit(1024) is a 1 followed by 1023 zeros; shifted right by the offset it sets that bit.
INSERT INTO discovery_sighting_blocks (source_id, block, bits)
SELECT s.source_id, s.ci_id >> 10, bit_or(B'1'::bit(1024) >> (s.ci_id & 1023)::integer)
FROM discovery_sightings s
WHERE s.streak AND EXISTS (SELECT 1 FROM discovery_sources d WHERE d.id = s.source_id)
GROUP BY s.source_id, s.ci_id >> 10;
-- A streak row of a deleted source (none should exist: deleting closed them) is closed at the
-- time it carries rather than dropped.
DELETE FROM discovery_sightings s
WHERE s.streak AND EXISTS (SELECT 1 FROM discovery_sources d WHERE d.id = s.source_id);
ALTER TABLE discovery_sightings DROP COLUMN streak;
