-- The recorder writes a group of delivery results as one INSERT into this
-- view: one statement, so one transaction and one round trip per group,
-- which keeps the commit as short as the crash window needs at full speed.
-- Each result updates its delivery (only while it is still `sending`, so a
-- late result never overwrites a newer one) and adds the attempt to its
-- history. A reader forgotten while their message was on the wire keeps
-- none of the server's words.
CREATE VIEW delivery_results (i, s, e, rp, n, t, y, d, at) AS
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

CREATE TRIGGER delivery_results_record INSTEAD OF INSERT ON delivery_results
BEGIN
    UPDATE deliveries SET status = NEW.s,
        last_error = CASE WHEN (SELECT status FROM subscribers WHERE id = deliveries.subscriber_id) = 'forgotten'
                     THEN NULL ELSE NEW.e END,
        smtp_reply = CASE WHEN (SELECT status FROM subscribers WHERE id = deliveries.subscriber_id) = 'forgotten'
                     THEN NULL ELSE COALESCE(NEW.rp, smtp_reply) END,
        next_attempt_at = NEW.n, sent_at = NEW.t, lease_until = NULL, updated_at = NEW.at,
        relay = COALESCE(NEW.y, relay)
    WHERE id = NEW.i AND status = 'sending';
    INSERT INTO delivery_events (delivery_id, at, kind, outcome, detail, relay)
        SELECT d.id, NEW.at, 'attempt', NEW.s,
               CASE WHEN s.status = 'forgotten' THEN NULL ELSE NEW.d END, NEW.y
        FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
        WHERE d.id = NEW.i;
END;
