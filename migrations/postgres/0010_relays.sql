-- The relay that took each delivery, and each attempt in its history: the
-- name of its `[relays.NAME]` table, or `smtp`. NULL for the file transport
-- and for rows written before relays were named.
ALTER TABLE deliveries ADD COLUMN relay TEXT;
ALTER TABLE delivery_events ADD COLUMN relay TEXT;
