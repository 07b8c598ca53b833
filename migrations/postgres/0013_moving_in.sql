-- Addresses that were forgotten, as keyed hashes (HMAC-SHA-256 with the
-- site's secret, cut to 128 bits, hex): no address can be read back, but an
-- import that lists a forgotten person again is recognised and leaves them out.
CREATE TABLE forgotten_addresses (
    key_hash TEXT PRIMARY KEY
);
