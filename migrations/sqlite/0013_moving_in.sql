-- Addresses that were forgotten, as keyed hashes (HMAC-SHA-256 with the
-- site's secret, cut to 128 bits, hex): no address can be read back, but an
-- import that lists a forgotten person again is recognised and leaves them out.
CREATE TABLE forgotten_addresses (
    key_hash TEXT PRIMARY KEY
);

-- How many people were forgotten before hashes were kept: an import cannot
-- recognise them. `subscribers forget ADDRESS` remembers an address again.
CREATE TABLE forgotten_before_hashes (n BIGINT NOT NULL);
INSERT INTO forgotten_before_hashes (n) SELECT COUNT(*) FROM subscribers WHERE status = 'forgotten';
