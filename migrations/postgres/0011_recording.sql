-- SQLite records a group of delivery results through a view and its trigger
-- (one statement per group). PostgreSQL does the same in one statement with
-- a data-modifying WITH, and needs nothing in the schema.
SELECT 1;
