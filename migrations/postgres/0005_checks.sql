-- The database refuses what the code would refuse to read: every enum column has
-- a CHECK with exactly the values of its Rust enum.
ALTER TABLE issues ADD CONSTRAINT issues_kind CHECK (kind IN ('post', 'digest'));
ALTER TABLE issues ADD CONSTRAINT issues_origin CHECK (origin IN ('schedule', 'manual'));
ALTER TABLE sources ADD CONSTRAINT sources_last_status
    CHECK (last_status IS NULL OR last_status IN ('200 OK', '304 Not Modified', 'error'));
ALTER TABLE posts ADD CONSTRAINT posts_source CHECK (source LIKE 'file:%' OR source LIKE 'feed:%');
