-- Registration in batches (docs/registry.md, "Registration throughput"): the registry groups the
-- registrations that arrive while one is being written and sends them in one call, so the
-- assignment lock is taken, the assignment-count trigger fires and the transaction commits once
-- per batch instead of once per producer. Same rules as tally.register_producer (002), item by
-- item, in array order: keep a live collector, else the live collector with the fewest
-- producers (ties: the smaller id), counting the producers this batch already gave it. The ids
-- of one call must be distinct. tally.register_producer stays for registries of the previous
-- version sharing this database during an upgrade.
CREATE FUNCTION tally.register_producers(
    p_ids uuid[], p_kinds text[], p_addresses text[], p_routes text[], p_interval_ms int[],
    p_formats text[], p_target_names text[], p_registered_by text[], p_may_change_any boolean[],
    p_collector_ttl interval, p_lease interval)
RETURNS TABLE (id uuid, accepted boolean, created boolean, previous_collector_id uuid,
               collector_id uuid, collector_address text, collector_live boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  n int := coalesce(array_length(p_ids, 1), 0);
  live_ids uuid[];
  live_n bigint[];
  best int;
  prev_collector uuid;
  prev_owner text;
  prev_live boolean;
  existed boolean;
  chosen uuid;
  chosen_live boolean;
  out_accepted boolean[] := '{}';
  out_created boolean[] := '{}';
  out_previous uuid[] := '{}';
  out_chosen uuid[] := '{}';
  out_live boolean[] := '{}';
  keep int[] := '{}';
BEGIN
  PERFORM pg_advisory_xact_lock(8386103194288276807);

  SELECT coalesce(array_agg(c.id ORDER BY c.n_producers, c.id), '{}'),
         coalesce(array_agg(c.n_producers ORDER BY c.n_producers, c.id), '{}')
    INTO live_ids, live_n
    FROM tally.collectors c WHERE c.last_seen > now() - p_collector_ttl;

  FOR i IN 1 .. n LOOP
    prev_live := false;
    SELECT p.collector_id, p.registered_by, COALESCE(c.last_seen > now() - p_collector_ttl, false)
      INTO prev_collector, prev_owner, prev_live
      FROM tally.producers p LEFT JOIN tally.collectors c ON c.id = p.collector_id
     WHERE p.id = p_ids[i];
    existed := FOUND;
    IF NOT existed THEN
      prev_collector := NULL;
      prev_live := false;
    END IF;
    IF existed AND NOT p_may_change_any[i] AND prev_owner IS DISTINCT FROM p_registered_by[i] THEN
      out_accepted := out_accepted || false;
      out_created := out_created || false;
      out_previous := out_previous || prev_collector;
      out_chosen := out_chosen || prev_collector;
      out_live := out_live || prev_live;
      CONTINUE;
    END IF;

    IF existed AND prev_live THEN
      chosen := prev_collector;
      chosen_live := true;
    ELSIF array_length(live_ids, 1) > 0 THEN
      best := 1;
      FOR j IN 2 .. array_length(live_ids, 1) LOOP
        IF live_n[j] < live_n[best] OR (live_n[j] = live_n[best] AND live_ids[j] < live_ids[best]) THEN
          best := j;
        END IF;
      END LOOP;
      chosen := live_ids[best];
      live_n[best] := live_n[best] + 1;
      chosen_live := true;
    ELSE
      chosen := prev_collector;
      chosen_live := false;
    END IF;
    keep := keep || i;
    out_accepted := out_accepted || true;
    out_created := out_created || NOT existed;
    out_previous := out_previous || prev_collector;
    out_chosen := out_chosen || chosen;
    out_live := out_live || chosen_live;
  END LOOP;

  -- One statement for the whole batch: the count triggers run once.
  INSERT INTO tally.producers AS p (id, kind, address, route, interval_ms, format, target_name,
                                    collector_id, registered_by, registered_at, renewed_at,
                                    lease_expires_at)
  SELECT p_ids[k], p_kinds[k], p_addresses[k], p_routes[k], p_interval_ms[k], p_formats[k],
         p_target_names[k], out_chosen[k], p_registered_by[k], now(), now(), now() + p_lease
    FROM unnest(keep) AS k
  ON CONFLICT ON CONSTRAINT producers_pkey DO UPDATE SET
    kind = EXCLUDED.kind, address = EXCLUDED.address, route = EXCLUDED.route,
    interval_ms = EXCLUDED.interval_ms, format = EXCLUDED.format,
    target_name = EXCLUDED.target_name, collector_id = EXCLUDED.collector_id,
    renewed_at = EXCLUDED.renewed_at, lease_expires_at = EXCLUDED.lease_expires_at;

  RETURN QUERY
    SELECT p_ids[i], out_accepted[i], out_created[i], out_previous[i], out_chosen[i],
           (SELECT c.address FROM tally.collectors c WHERE c.id = out_chosen[i]), out_live[i]
      FROM generate_series(1, n) AS i
     ORDER BY i;
END
$$;
