"""The chaos plan is a pure function of its seed and asks for every kind of request and fault."""

from __future__ import annotations

import chaos_plan as plan

from payments import gateway


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    assert plan.make_plan(7) == plan.make_plan(7)
    assert plan.make_plan(7).orders != plan.make_plan(8).orders
    assert plan.make_plan(7).faults != plan.make_plan(8).faults


def test_every_plan_asks_for_every_kind_of_order_and_fault():
    for seed in (plan.DEFAULT_SEED, 1, 2, 3):
        the_plan = plan.make_plan(seed)
        orders = the_plan.orders
        assert len(orders) >= 100
        assert {order.method for order in orders} == set(gateway.METHODS)
        assert any(order.customer is None for order in orders)
        assert any(
            order.customer is not None
            and order.total > the_plan.customers[order.customer].credit_limit
            for order in orders
        )
        assert {order.replay for order in orders} == {
            plan.NO_REPLAY,
            plan.REPLAY_AFTER,
            plan.REPLAY_CONCURRENT,
        }
        assert {c.email is None for c in the_plan.customers} == {True, False}
        assert any(not c.deliverable and c.email for c in the_plan.customers)
        kinds = [fault.kind for fault in the_plan.faults]
        assert kinds.count(plan.KILL_WORKER) >= 8
        assert kinds.count(plan.FLUSH_REDIS) == 2
        assert kinds.count(plan.DB_OUTAGE) >= 3
        assert kinds.count(plan.KILL_SWEEPER) == kinds.count(plan.RESTART_SWEEPER) == 1
        assert all(0 <= fault.at_order < len(orders) for fault in the_plan.faults)
