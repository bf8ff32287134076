-- A skill's centroid: the normalised mean of its alias vectors. A sentence that describes a skill is often nearer
-- the skill as a whole than any one of its (ESCO: up to dozens of) alias phrasings, so sentence→skill search scores
-- both. Maintained by the catalog writer whenever aliases change; computed from stored vectors, never embedded.
ALTER TABLE skills ADD COLUMN centroid vector({{EMBEDDING_DIM}});

UPDATE skills s SET centroid = x.c
FROM (SELECT skill_id, l2_normalize(avg(embedding)) AS c FROM skill_aliases WHERE embedding IS NOT NULL
      GROUP BY skill_id) x
WHERE s.id = x.skill_id;

CREATE INDEX skills_centroid_idx ON skills USING hnsw (centroid vector_cosine_ops);
