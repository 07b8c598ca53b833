-- When the last confirmation email went out, so a form cannot mail-bomb an address.
ALTER TABLE subscribers ADD COLUMN confirm_sent_at BIGINT;
