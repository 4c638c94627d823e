-- The registry's additions to tally.producers and tally.collectors (docs/registry.md).
--
-- Every change to a producer's assignment happens inside a transaction that holds the
-- registry's advisory lock (pg_advisory_xact_lock(8386103194288276807), "tallyREG", the
-- kAssignmentLockKey of registry/include/tally/registry/store.h), so the registries sharing
-- this database assign one producer at a time.

-- The name of the token that registered the producer (NULL under `auth: none`): a token with
-- the producer role may renew and delete only the producers it registered.
ALTER TABLE tally.producers ADD COLUMN registered_by text;

-- The lease GC deletes by expiry time; a collector reads its assignments page by page in id
-- order.
CREATE INDEX producers_lease_expires_at_idx ON tally.producers (lease_expires_at);
CREATE INDEX producers_collector_id_id_idx ON tally.producers (collector_id, id);

-- How many producers are assigned to each collector, kept exact by the triggers below, so that
-- choosing the least-loaded collector reads a handful of collector rows instead of counting
-- every producer.
ALTER TABLE tally.collectors ADD COLUMN n_producers bigint NOT NULL DEFAULT 0;

-- Statement-level triggers with transition tables: a GC pass that moves thousands of
-- producers updates each collector row once, not once per producer.
CREATE FUNCTION tally.producers_count_assignments() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE tally.collectors c SET n_producers = c.n_producers + d.n
    FROM (SELECT collector_id, count(*) AS n FROM new_rows
          WHERE collector_id IS NOT NULL GROUP BY collector_id) d
    WHERE c.id = d.collector_id;
  ELSIF TG_OP = 'DELETE' THEN
    UPDATE tally.collectors c SET n_producers = c.n_producers - d.n
    FROM (SELECT collector_id, count(*) AS n FROM old_rows
          WHERE collector_id IS NOT NULL GROUP BY collector_id) d
    WHERE c.id = d.collector_id;
  ELSE
    UPDATE tally.collectors c SET n_producers = c.n_producers + d.n
    FROM (SELECT collector_id, sum(n) AS n
          FROM (SELECT collector_id, 1 AS n FROM new_rows WHERE collector_id IS NOT NULL
                UNION ALL
                SELECT collector_id, -1 AS n FROM old_rows WHERE collector_id IS NOT NULL) x
          GROUP BY collector_id HAVING sum(n) <> 0) d
    WHERE c.id = d.collector_id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER producers_count_insert AFTER INSERT ON tally.producers
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tally.producers_count_assignments();
CREATE TRIGGER producers_count_update AFTER UPDATE ON tally.producers
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tally.producers_count_assignments();
CREATE TRIGGER producers_count_delete AFTER DELETE ON tally.producers
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tally.producers_count_assignments();

-- Producers already in the table when this migration runs.
UPDATE tally.collectors c
SET n_producers = (SELECT count(*) FROM tally.producers p WHERE p.collector_id = c.id);

-- Registration in one round trip: take the assignment lock, then (with a snapshot taken after
-- the lock, so every assignment committed before is seen) keep the producer's collector if it
-- is live, else pick the live collector with the fewest producers (ties: the smaller id), and
-- upsert. Called in its own transaction, so the lock is held only while this runs on the
-- server, not across client round trips. Without a live collector the producer keeps what it
-- had (possibly nothing) and collector_live is false.
-- accepted is false (and nothing changes) when a caller that may not change other tokens'
-- producers re-registers one registered by another token.
CREATE FUNCTION tally.register_producer(
    p_id uuid, p_kind text, p_address text, p_route text, p_interval_ms int, p_format text,
    p_target_name text, p_registered_by text, p_may_change_any boolean,
    p_collector_ttl interval, p_lease interval)
RETURNS TABLE (accepted boolean, created boolean, previous_collector_id uuid,
               collector_id uuid, collector_address text, collector_live boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  prev_collector uuid;
  prev_owner text;
  prev_live boolean := false;
  existed boolean;
  chosen uuid;
  chosen_live boolean := false;
BEGIN
  PERFORM pg_advisory_xact_lock(8386103194288276807);

  SELECT p.collector_id, p.registered_by, COALESCE(c.last_seen > now() - p_collector_ttl, false)
    INTO prev_collector, prev_owner, prev_live
    FROM tally.producers p LEFT JOIN tally.collectors c ON c.id = p.collector_id
   WHERE p.id = p_id;
  existed := FOUND;
  IF existed AND NOT p_may_change_any AND prev_owner IS DISTINCT FROM p_registered_by THEN
    RETURN QUERY SELECT false, false, prev_collector, prev_collector, NULL::text, prev_live;
    RETURN;
  END IF;

  IF existed AND prev_live THEN
    chosen := prev_collector;
    chosen_live := true;
  ELSE
    SELECT c.id INTO chosen FROM tally.collectors c
     WHERE c.last_seen > now() - p_collector_ttl
     ORDER BY c.n_producers, c.id LIMIT 1;
    chosen_live := FOUND;
    IF NOT chosen_live THEN
      chosen := prev_collector;
    END IF;
  END IF;

  INSERT INTO tally.producers AS p (id, kind, address, route, interval_ms, format, target_name,
                                    collector_id, registered_by, registered_at, renewed_at,
                                    lease_expires_at)
  VALUES (p_id, p_kind, p_address, p_route, p_interval_ms, p_format, p_target_name, chosen,
          p_registered_by, now(), now(), now() + p_lease)
  ON CONFLICT (id) DO UPDATE SET
    kind = EXCLUDED.kind, address = EXCLUDED.address, route = EXCLUDED.route,
    interval_ms = EXCLUDED.interval_ms, format = EXCLUDED.format,
    target_name = EXCLUDED.target_name, collector_id = EXCLUDED.collector_id,
    renewed_at = EXCLUDED.renewed_at, lease_expires_at = EXCLUDED.lease_expires_at;

  RETURN QUERY
    SELECT true, NOT existed, prev_collector, chosen,
           (SELECT c.address FROM tally.collectors c WHERE c.id = chosen), chosen_live;
END
$$;
