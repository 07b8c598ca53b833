-- Why each recipient of a report failed, from the bounce reader's taxonomy
-- (`userunknown`, `mailboxfull`, `feedback`, ...). NULL on reports recorded
-- before the reader gave one.
ALTER TABLE reports ADD COLUMN reason TEXT;
