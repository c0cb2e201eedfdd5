"""The PostgreSQL redemption batch as one server-side function (created by migration 5).

``errdiscount_redeem_batch(items jsonb, now bigint, ttl bigint, lock_timeout bigint)``
runs, for each item in order, exactly what `Store.redeem_idempotent` runs in Python
(`_idempotency.begin`, then `_redeem.redeem` up to its completion), or for an item
without a key (``"key": null``, `REDEEM_BATCH_FUNCTION` only) what `Store.redeem` runs
(no claim: the grant alone, its redemption row without a key), and returns one
JSON object per item: the claim's result, and for a claim the grant's outcome. The
caller renders each outcome with the store's `ResponseRenderer` and completes the
claims in the same transaction (`_pg_batch`), so the batch costs two round trips and
one commit however many items it holds.

Policy, as in the Python path:
- the lock order is redemptions → subject_usage → code_pools/coupon_codes → budgets;
  the budget, the one row every redemption of a campaign shares, is charged last, so
  its lock is held for the shortest time (from migration 12, `_deferred_budget`: once
  per batch, by the last statement before the commit);
- each item's grant runs in its own ``BEGIN ... EXCEPTION`` block (one subtransaction;
  a batch holds at most 64 items, PostgreSQL's per-transaction subtransaction cache):
  a refusal raises SQLSTATE ``ED001``, which undoes that item's redemption row, cap
  counts and code claim and nothing else, while its idempotency claim stays and will
  store the refusal;
- a key claimed by an earlier item of the same batch is answered as that item's
  replay (``replay_of``), as on SQLite where the earlier item is already complete;
- a budget created or refilled between the charge and its check, twice, raises
  ``40001`` (serialization failure): the dialect retries the whole batch;
- stored JSON texts (``grant_json``, ``cap_usage``, the ledger's ``detail``) are built
  byte for byte as Python's ``dumps`` builds them (sorted keys, no whitespace).
"""

from __future__ import annotations

__all__ = [
    "BUDGET_MOVED",
    "CHARGE_BUDGETS_FUNCTION",
    "COMPLETE_BATCH_FUNCTION",
    "KEY_LOST",
    "REDEEM_BATCH_FUNCTION",
    "REDEEM_BATCH_FUNCTION_DEFERRED",
    "REDEEM_BATCH_FUNCTION_V5",
]

#: SQLSTATE of `COMPLETE_BATCH_FUNCTION` when a claim was taken over (IdempotencyKeyLost)
KEY_LOST = "ED002"
#: SQLSTATE of `CHARGE_BUDGETS_FUNCTION` when a budget no longer covers the batch's charge
BUDGET_MOVED = "ED003"

# ruff: noqa: E501
#: the function as migration 5 created it (keyed items only); frozen, as migrations are
REDEEM_BATCH_FUNCTION_V5 = r"""
CREATE OR REPLACE FUNCTION errdiscount_redeem_batch(p_items jsonb, p_now bigint, p_ttl bigint, p_lock bigint)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    it jsonb;
    idx int := 0;
    results jsonb := '[]'::jsonb;
    owners text[] := ARRAY[]::text[];
    claimed text;
    k record;
    locked_until bigint;
    claim jsonb;
    refusal jsonb;
    rid text;
    cap record;
    period bigint;
    win bigint;
    counted bigint;
    caps_text text;
    pool_name text;
    code text;
    bcamp text;
    brow record;
    grant_text text;
    done boolean;
    existing jsonb;
BEGIN
    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        idx := idx + 1;
        owners := owners || (it->>'owner');
        -- 1. the idempotency claim (_idempotency.begin)
        claim := NULL;
        INSERT INTO idempotency_keys (scope, key, fingerprint, state, owner, locked_at, created_at, expires_at)
        VALUES (it->>'scope', it->>'key', it->>'fp', 'in_flight', it->>'owner', p_now, p_now, p_now + p_ttl)
        ON CONFLICT (scope, key) DO NOTHING RETURNING owner INTO claimed;
        IF claimed IS NULL THEN
            SELECT fingerprint, state, owner, locked_at, status, body, expires_at INTO k
            FROM idempotency_keys WHERE scope = it->>'scope' AND key = it->>'key';
            IF NOT FOUND THEN
                claim := jsonb_build_object('claim', 'in_flight', 'locked_until', p_now);
            ELSIF k.expires_at <= p_now THEN
                UPDATE idempotency_keys SET fingerprint = it->>'fp', state = 'in_flight',
                    owner = it->>'owner', locked_at = p_now, status = NULL, body = NULL,
                    created_at = p_now, expires_at = p_now + p_ttl
                WHERE scope = it->>'scope' AND key = it->>'key' AND owner = k.owner AND expires_at <= p_now;
                IF NOT FOUND THEN
                    claim := jsonb_build_object('claim', 'in_flight', 'locked_until', p_now + p_lock);
                END IF;
            ELSIF k.fingerprint <> it->>'fp' THEN
                claim := jsonb_build_object('claim', 'mismatch');
            ELSIF k.state = 'done' THEN
                claim := jsonb_build_object('claim', 'replay', 'status', k.status, 'body', encode(k.body, 'base64'));
            ELSIF array_position(owners, k.owner) IS NOT NULL THEN
                claim := jsonb_build_object('claim', 'replay_of', 'index', array_position(owners, k.owner) - 1);
            ELSE
                locked_until := k.locked_at + p_lock;
                IF locked_until > p_now THEN
                    claim := jsonb_build_object('claim', 'in_flight', 'locked_until', locked_until);
                ELSE
                    UPDATE idempotency_keys SET owner = it->>'owner', locked_at = p_now
                    WHERE scope = it->>'scope' AND key = it->>'key' AND owner = k.owner AND state = 'in_flight';
                    IF FOUND THEN
                        claim := jsonb_build_object('claim', 'new', 'taken_over', true);
                    ELSE
                        claim := jsonb_build_object('claim', 'in_flight', 'locked_until', p_now + p_lock);
                    END IF;
                END IF;
            END IF;
        END IF;
        IF claim IS NOT NULL AND claim->>'claim' <> 'new' THEN
            results := results || jsonb_build_array(claim);
            CONTINUE;
        END IF;
        IF claim IS NULL THEN
            claim := jsonb_build_object('claim', 'new', 'taken_over', false);
        END IF;

        -- 2. the grant (_redeem._grant), in its own subtransaction
        refusal := NULL;
        existing := NULL;
        code := NULL;
        bcamp := NULL;
        BEGIN
            INSERT INTO redemptions (id, jti, subject, issuer, kind, amount, unit, campaign,
                grant_json, cap_usage, idempotency_key, expires_at, redeemed_at)
            VALUES (it->>'id', it->>'jti', it->>'subject', it->>'issuer', it->>'kind',
                (it->>'amount')::bigint, it->>'unit', it->>'campaign', '{}', '[]', it->>'key',
                (it->>'expires_at')::bigint, p_now)
            ON CONFLICT (jti) DO NOTHING RETURNING id INTO rid;
            IF rid IS NULL THEN
                SELECT jsonb_build_object('id', r.id, 'jti', r.jti, 'subject', r.subject,
                    'issuer', r.issuer, 'kind', r.kind, 'amount', r.amount, 'unit', r.unit,
                    'campaign', r.campaign, 'grant_json', r.grant_json, 'expires_at', r.expires_at,
                    'idempotency_key', r.idempotency_key, 'redeemed_at', r.redeemed_at,
                    'reversed_at', r.reversed_at, 'reversal_reason', r.reversal_reason)
                INTO existing FROM redemptions AS r WHERE r.jti = it->>'jti';
                IF existing IS NULL THEN
                    RAISE EXCEPTION 'redemption conflict without a row' USING ERRCODE = '40001';
                END IF;
                refusal := jsonb_build_object('outcome', 'already_redeemed', 'row', existing);
                RAISE EXCEPTION 'refused' USING ERRCODE = 'ED001';
            END IF;

            caps_text := '';
            FOR cap IN SELECT c.scope, c.max_redemptions, c.period_seconds FROM user_caps AS c
                       WHERE c.scope = '*' OR c.scope = it->>'kind' ORDER BY c.scope LOOP
                period := cap.period_seconds * 1000000;
                win := p_now - p_now % period;
                counted := NULL;
                IF cap.max_redemptions > 0 THEN
                    INSERT INTO subject_usage (subject, scope, window_start, used)
                    VALUES (it->>'subject', cap.scope, win, 1)
                    ON CONFLICT (subject, scope, window_start) DO UPDATE
                    SET used = subject_usage.used + 1 WHERE subject_usage.used < cap.max_redemptions
                    RETURNING used INTO counted;
                END IF;
                IF counted IS NULL THEN
                    refusal := jsonb_build_object('outcome', 'user_cap', 'subject', it->>'subject',
                        'scope', cap.scope, 'max_redemptions', cap.max_redemptions,
                        'resets_at', win + period);
                    RAISE EXCEPTION 'refused' USING ERRCODE = 'ED001';
                END IF;
                caps_text := caps_text || CASE WHEN caps_text = '' THEN '' ELSE ',' END
                    || '[' || to_json(cap.scope)::text || ',' || win::text || ']';
            END LOOP;

            IF it->>'kind' = 'coupon' THEN
                FOREACH pool_name IN ARRAY CASE WHEN it->>'campaign' = 'coupon'
                        THEN ARRAY[it->>'campaign'] ELSE ARRAY[it->>'campaign', 'coupon'] END LOOP
                    UPDATE code_pools SET remaining = remaining - 1
                    WHERE pool = pool_name AND remaining >= 1;
                    IF NOT FOUND THEN
                        PERFORM 1 FROM code_pools WHERE pool = pool_name;
                        IF NOT FOUND THEN
                            CONTINUE;
                        END IF;
                        refusal := jsonb_build_object('outcome', 'inventory_exhausted', 'pool', pool_name);
                        RAISE EXCEPTION 'refused' USING ERRCODE = 'ED001';
                    END IF;
                    UPDATE coupon_codes SET redemption_id = rid WHERE id = (SELECT MIN(id)
                        FROM coupon_codes WHERE pool = pool_name AND redemption_id IS NULL)
                        AND redemption_id IS NULL RETURNING coupon_codes.code INTO code;
                    IF code IS NULL THEN
                        RAISE EXCEPTION 'code pool counter out of step with its codes';
                    END IF;
                    EXIT;
                END LOOP;
            END IF;

            -- The budget last: its row lock is held from here to the commit only.
            done := false;
            FOR attempt IN 1..2 LOOP
                UPDATE budgets SET remaining = remaining - (it->>'amount')::bigint, updated_at = p_now
                WHERE kind = it->>'kind' AND campaign = (SELECT b.campaign FROM budgets AS b
                    WHERE b.kind = it->>'kind' AND b.campaign IN (it->>'campaign', '*')
                    ORDER BY b.campaign = '*' LIMIT 1)
                  AND unit = it->>'unit' AND remaining >= (it->>'amount')::bigint
                RETURNING campaign INTO bcamp;
                IF FOUND THEN
                    done := true;
                    EXIT;
                END IF;
                SELECT b.campaign, b.unit, b.remaining INTO brow FROM budgets AS b
                WHERE b.kind = it->>'kind' AND b.campaign IN (it->>'campaign', '*')
                ORDER BY b.campaign = '*' LIMIT 1;
                IF NOT FOUND THEN
                    bcamp := NULL;
                    done := true;
                    EXIT;
                END IF;
                IF brow.unit <> it->>'unit' OR brow.remaining < (it->>'amount')::bigint THEN
                    refusal := jsonb_build_object('outcome', 'budget_exhausted', 'kind', it->>'kind',
                        'campaign', brow.campaign, 'remaining', brow.remaining, 'unit', brow.unit);
                    RAISE EXCEPTION 'refused' USING ERRCODE = 'ED001';
                END IF;
            END LOOP;
            IF NOT done THEN
                RAISE EXCEPTION 'budget changed twice during one redemption' USING ERRCODE = '40001';
            END IF;

            grant_text := '{"amount":' || (it->>'amount') ||
                CASE WHEN code IS NULL THEN '' ELSE ',"coupon_code":' || to_json(code)::text END ||
                ',"unit":' || to_json(it->>'unit')::text || '}';
            UPDATE redemptions SET grant_json = grant_text, budget_campaign = bcamp,
                cap_usage = '[' || caps_text || ']' WHERE id = rid;
            INSERT INTO ledger (at, event, subject, jti, redemption_id, kind, amount, unit, detail)
            VALUES (p_now, 'redeemed', it->>'subject', it->>'jti', rid, it->>'kind',
                (it->>'amount')::bigint, it->>'unit',
                '{"budget":' || COALESCE(to_json(bcamp)::text, 'null') ||
                ',"campaign":' || to_json(it->>'campaign')::text ||
                ',"grant":' || grant_text ||
                ',"issuer":' || to_json(it->>'issuer')::text ||
                ',"priority":' || (it->>'priority') ||
                ',"support_flag":' || (it->>'support_flag') || '}');
        EXCEPTION WHEN SQLSTATE 'ED001' THEN
            NULL;  -- refusal holds the outcome; the grant's writes are undone
        END;
        IF refusal IS NULL THEN
            refusal := jsonb_build_object('outcome', 'redeemed', 'coupon_code', code);
        END IF;
        results := results || jsonb_build_array(claim || refusal);
    END LOOP;
    RETURN results;
END
$fn$
"""


def _unkeyed_too(v5: str) -> str:
    """`REDEEM_BATCH_FUNCTION_V5` with step 1 (the claim) skipped for an item without a key.

    Derived rather than copied so the difference is exactly these two lines: such an
    item is claimed ``new`` (nothing to replay, nothing to complete) and its grant runs
    as a keyed one's does, with a NULL ``idempotency_key``. ``owners`` still gets its
    (NULL) entry, so ``replay_of`` indexes stay the items' indexes.
    """
    opening = "        claim := NULL;\n        INSERT INTO idempotency_keys"
    closing = "        END IF;\n        IF claim IS NOT NULL AND claim->>'claim' <> 'new' THEN"
    assert v5.count(opening) == 1
    assert v5.count(closing) == 1
    return v5.replace(
        opening,
        "        claim := NULL;\n        IF it->>'key' IS NOT NULL THEN  -- unkeyed: no claim\n"
        "        INSERT INTO idempotency_keys",
    ).replace(closing, "        END IF;\n" + closing)


#: the batch function for keyed and unkeyed items (installed over the V5 one by a
#: migration; `Store` routes unkeyed redemptions to it only once that has run)
REDEEM_BATCH_FUNCTION = _unkeyed_too(REDEEM_BATCH_FUNCTION_V5)

#: ``errdiscount_complete_batch``: the claims' responses stored (``_idempotency.complete``
#: for many); raises ``ED002`` unless every claim was still held, so nothing commits.
COMPLETE_BATCH_FUNCTION = r"""
CREATE OR REPLACE FUNCTION errdiscount_complete_batch(p_scopes text[], p_keys text[], p_owners text[],
    p_statuses int[], p_bodies bytea[], p_now bigint)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
    n int;
BEGIN
    UPDATE idempotency_keys AS k SET state = 'done', status = v.status, body = v.body,
        locked_at = p_now
    FROM unnest(p_scopes, p_keys, p_owners, p_statuses, p_bodies) AS v(scope, key, owner, status, body)
    WHERE k.scope = v.scope AND k.key = v.key AND k.owner = v.owner AND k.state = 'in_flight';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> cardinality(p_keys) THEN
        RAISE EXCEPTION 'idempotency claim lost' USING ERRCODE = 'ED002';
    END IF;
    RETURN n;
END
$fn$
"""


_BUDGET_BLOCK_START = (
    "            -- The budget last: its row lock is held from here to the commit only.\n"
)
_BUDGET_BLOCK_END = (
    "            IF NOT done THEN\n"
    "                RAISE EXCEPTION 'budget changed twice during one redemption'"
    " USING ERRCODE = '40001';\n"
    "            END IF;\n"
)
_DEFERRED_BUDGET_BLOCK = r"""            -- The budget: checked against this batch's own running count of its row
            -- (read once; locked up front when p_lock_budget), charged once for the
            -- whole batch by errdiscount_charge_budgets, last before the commit.
            lookup := (it->>'kind') || E'\x1f' || (it->>'campaign');
            IF NOT budget_of ? lookup THEN
                SELECT b.kind, b.campaign, b.unit, b.remaining INTO brow FROM budgets AS b
                WHERE b.kind = it->>'kind' AND b.campaign IN (it->>'campaign', '*')
                ORDER BY b.campaign = '*' LIMIT 1;
                IF FOUND THEN
                    bkey := brow.kind || E'\x1f' || brow.campaign;
                    IF NOT budget_rows ? bkey THEN
                        budget_rows := budget_rows || jsonb_build_object(bkey, jsonb_build_object(
                            'kind', brow.kind, 'campaign', brow.campaign, 'unit', brow.unit,
                            'left', brow.remaining, 'amount', 0));
                    END IF;
                    budget_of := budget_of || jsonb_build_object(lookup, bkey);
                ELSE
                    budget_of := budget_of || jsonb_build_object(lookup, NULL::text);
                END IF;
            END IF;
            bkey := budget_of->>lookup;
            IF bkey IS NOT NULL THEN
                bentry := budget_rows->bkey;
                IF bentry->>'unit' <> it->>'unit'
                        OR (bentry->>'left')::bigint < (it->>'amount')::bigint THEN
                    refusal := jsonb_build_object('outcome', 'budget_exhausted', 'kind', it->>'kind',
                        'campaign', bentry->>'campaign', 'remaining', (bentry->>'left')::bigint,
                        'unit', bentry->>'unit');
                    RAISE EXCEPTION 'refused' USING ERRCODE = 'ED001';
                END IF;
                -- Nothing after this point raises ED001, so the count cannot run ahead of
                -- an item whose writes were undone.
                budget_rows := jsonb_set(budget_rows, ARRAY[bkey], bentry || jsonb_build_object(
                    'left', (bentry->>'left')::bigint - (it->>'amount')::bigint,
                    'amount', (bentry->>'amount')::bigint + (it->>'amount')::bigint));
                bcamp := bentry->>'campaign';
            END IF;
"""
#: with p_lock_budget, every budget row the batch may charge is locked first, in the
#: transaction itself: a lock taken inside an item's subtransaction would go with it
#: when that item is refused, while later items still count on the row
_LOCK_BUDGETS = r"""    IF p_lock_budget THEN
        PERFORM 1 FROM budgets AS b WHERE EXISTS (
            SELECT 1 FROM jsonb_array_elements(p_items) AS i
            WHERE b.kind = i->>'kind' AND b.campaign IN (i->>'campaign', '*'))
        ORDER BY b.kind, b.campaign FOR UPDATE;
    END IF;
"""
_DEFERRED_RETURN = r"""    RETURN results || jsonb_build_array(jsonb_build_object('charges', COALESCE(
        (SELECT jsonb_agg(jsonb_build_object('kind', e.v->'kind', 'campaign', e.v->'campaign',
                'unit', e.v->'unit', 'amount', e.v->'amount') ORDER BY e.row_key)
         FROM jsonb_each(budget_rows) AS e(row_key, v) WHERE (e.v->>'amount')::bigint > 0),
        '[]'::jsonb)));
"""


def _deferred_budget(function: str) -> str:
    """``function`` with the budget charged once per batch, after every item, not per item.

    Derived, as `_unkeyed_too` is: the per-item ``UPDATE budgets`` (whose row lock was
    then held through every later item, the Python rendering, the second round trip
    and the commit, so concurrent batches queued on it) becomes a check against a
    running count read once per budget row; the answer gains a last element,
    ``{"charges": [{"kind", "campaign", "unit", "amount"}, ...]}`` (sorted by row, so
    batches lock rows in one order), which the caller charges with
    `CHARGE_BUDGETS_FUNCTION` last before the commit. ``p_lock_budget`` locks the
    rows first (`_LOCK_BUDGETS`): the retry after a charge failed (`BUDGET_MOVED`)
    decides under the lock, as the per-item charge did.
    """
    signature = "p_ttl bigint, p_lock bigint)"
    declare = "    existing jsonb;\n"
    loop = "BEGIN\n    FOR it IN SELECT value FROM jsonb_array_elements(p_items) LOOP\n"
    returning = "    RETURN results;\n"
    for part in (signature, declare, loop, returning, _BUDGET_BLOCK_START, _BUDGET_BLOCK_END):
        assert function.count(part) == 1, part
    start = function.index(_BUDGET_BLOCK_START)
    end = function.index(_BUDGET_BLOCK_END) + len(_BUDGET_BLOCK_END)
    function = function[:start] + _DEFERRED_BUDGET_BLOCK + function[end:]
    return (
        function.replace(signature, "p_ttl bigint, p_lock bigint, p_lock_budget boolean)")
        .replace(
            declare,
            declare + "    budget_rows jsonb := '{}'::jsonb;\n    budget_of jsonb := '{}'::jsonb;\n"
            "    bkey text;\n    bentry jsonb;\n    lookup text;\n",
        )
        .replace(loop, "BEGIN\n" + _LOCK_BUDGETS + loop.removeprefix("BEGIN\n"))
        .replace(returning, _DEFERRED_RETURN)
    )


#: the batch function with one budget charge per batch (a migration installs it next to
#: the 4-argument one; `Store` calls it once that has run)
REDEEM_BATCH_FUNCTION_DEFERRED = _deferred_budget(REDEEM_BATCH_FUNCTION)

#: ``errdiscount_charge_budgets``: a batch's budget charges, in the order given (sorted
#: by row); raises `BUDGET_MOVED` unless every row still covers its charge, so nothing
#: commits and the caller runs the batch again under the rows' locks.
CHARGE_BUDGETS_FUNCTION = r"""
CREATE OR REPLACE FUNCTION errdiscount_charge_budgets(p_charges jsonb, p_now bigint)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
    c jsonb;
    n int := 0;
BEGIN
    FOR c IN SELECT value FROM jsonb_array_elements(p_charges) LOOP
        UPDATE budgets SET remaining = remaining - (c->>'amount')::bigint, updated_at = p_now
        WHERE kind = c->>'kind' AND campaign = c->>'campaign' AND unit = c->>'unit'
          AND remaining >= (c->>'amount')::bigint;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'budget moved since the batch read it' USING ERRCODE = 'ED003';
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$fn$
"""
