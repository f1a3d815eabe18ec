"""Orders: stock is taken whole or not at all, prices are those of the moment, and a cancel
puts the stock back exactly once, however many requests race."""

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.accounts import API, Account, an_admin, assert_error, signed_up

PRODUCTS = f"{API}/products"
ORDERS = f"{API}/orders"


async def new_product(
    client: httpx.AsyncClient, admin: Account, sku: str, price: str = "1.00", stock: int = 10
) -> dict[str, Any]:
    """A product made by `admin`; fails the test if it cannot be created."""
    body = {"sku": sku, "name": f"Product {sku}", "price": price, "stock": stock}
    response = await client.post(PRODUCTS, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def stock_of(client: httpx.AsyncClient, reader: Account, product: dict[str, Any]) -> int:
    response = await client.get(f"{PRODUCTS}/{product['id']}", headers=reader.headers)
    assert response.status_code == 200, response.text
    stock: int = response.json()["stock"]
    return stock


def lines(*wanted: tuple[dict[str, Any], int]) -> dict[str, Any]:
    """An order body: (product, quantity) pairs."""
    return {"items": [{"product_id": product["id"], "quantity": n} for product, n in wanted]}


async def place(
    client: httpx.AsyncClient, buyer: Account, *wanted: tuple[dict[str, Any], int]
) -> dict[str, Any]:
    """An order of `buyer`; fails the test if it is not placed."""
    response = await client.post(ORDERS, json=lines(*wanted), headers=buyer.headers)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def order_ids(client: httpx.AsyncClient, buyer: Account) -> list[int]:
    response = await client.get(ORDERS, params={"limit": 100}, headers=buyer.headers)
    assert response.status_code == 200, response.text
    return [order["id"] for order in response.json()["items"]]


# --- placing an order ------------------------------------------------------------------------


async def test_an_order_takes_the_stock_and_records_the_prices(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    ink = await new_product(client, boss, "INK-1", "4.25", 5)

    response = await client.post(ORDERS, json=lines((pen, 3), (ink, 2)), headers=ada.headers)

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["owner_id"] == ada.id
    assert order["status"] == "placed"
    assert order["cancelled_at"] is None
    assert order["total"] == "13.00"  # 3 x 1.50 + 2 x 4.25
    assert sorted(
        (item["product_id"], item["quantity"], item["unit_price"]) for item in order["items"]
    ) == sorted([(pen["id"], 3, "1.50"), (ink["id"], 2, "4.25")])
    assert await stock_of(client, ada, pen) == 7
    assert await stock_of(client, ada, ink) == 3
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=ada.headers)).json() == order


async def test_an_order_may_take_the_last_of_the_stock(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 4)

    await place(client, ada, (pen, 4))

    assert await stock_of(client, ada, pen) == 0


async def test_a_later_price_change_does_not_alter_an_order(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    order = await place(client, ada, (pen, 2))

    repriced = await client.patch(
        f"{PRODUCTS}/{pen['id']}", json={"price": "99.99"}, headers=boss.headers
    )
    assert repriced.status_code == 200, repriced.text

    stored = (await client.get(f"{ORDERS}/{order['id']}", headers=ada.headers)).json()
    assert stored == order
    assert stored["items"][0]["unit_price"] == "1.50"
    assert stored["total"] == "3.00"
    listed = (await client.get(ORDERS, headers=ada.headers)).json()["items"]
    assert [summary["total"] for summary in listed] == ["3.00"]
    assert (await place(client, ada, (pen, 1)))["total"] == "99.99"


async def test_the_same_product_twice_in_one_order_is_merged(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)

    order = await place(client, ada, (pen, 2), (pen, 3))

    assert [(item["product_id"], item["quantity"]) for item in order["items"]] == [(pen["id"], 5)]
    assert order["total"] == "7.50"
    assert await stock_of(client, ada, pen) == 5


async def test_lines_of_one_product_that_together_exceed_its_stock_are_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 4)

    response = await client.post(ORDERS, json=lines((pen, 2), (pen, 3)), headers=ada.headers)

    assert_error(response, 409, "insufficient_stock")
    assert response.json()["available"] == 4
    assert await stock_of(client, ada, pen) == 4


async def test_too_little_stock_refuses_the_whole_order_and_takes_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    # Created first, so that their stock is taken before the scarce product is reached.
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    ink = await new_product(client, boss, "INK-1", "4.25", 5)
    rare = await new_product(client, boss, "RARE-1", "100.00", 1)
    paper = await new_product(client, boss, "PAPER-1", "0.10", 50)

    response = await client.post(
        ORDERS, json=lines((pen, 2), (ink, 5), (rare, 3), (paper, 7)), headers=ada.headers
    )

    assert_error(response, 409, "insufficient_stock")
    body = response.json()
    assert "RARE-1" in body["detail"]
    assert body["product_id"] == rare["id"]
    assert body["available"] == 1
    assert [await stock_of(client, ada, p) for p in (pen, ink, rare, paper)] == [10, 5, 1, 50]
    assert await order_ids(client, ada) == []


async def test_an_unknown_product_refuses_the_whole_order_and_takes_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)

    response = await client.post(
        ORDERS,
        json={
            "items": [
                {"product_id": pen["id"], "quantity": 2},
                {"product_id": 999999, "quantity": 1},
            ]
        },
        headers=ada.headers,
    )

    assert_error(response, 404, "not_found")
    assert await stock_of(client, ada, pen) == 10
    assert await order_ids(client, ada) == []


async def test_fifty_racing_orders_for_ten_in_stock_sell_exactly_ten(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    body = lines((pen, 1))

    answers = await asyncio.gather(
        *(
            client.post(ORDERS, json=body, headers=(ada if n % 2 else bob).headers)
            for n in range(50)
        )
    )

    assert Counter(response.status_code for response in answers) == {201: 10, 409: 40}, [
        response.text for response in answers if response.status_code not in (201, 409)
    ]
    for response in answers:
        if response.status_code == 409:
            assert response.json()["code"] == "insufficient_stock"
            assert response.json()["product_id"] == pen["id"]
    assert await stock_of(client, ada, pen) == 0
    assert len(await order_ids(client, ada)) + len(await order_ids(client, bob)) == 10


# --- cancelling an order ---------------------------------------------------------------------


async def test_a_cancel_puts_the_stock_back_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    ink = await new_product(client, boss, "INK-1", "4.25", 5)
    order = await place(client, ada, (pen, 3), (ink, 1))
    url = f"{ORDERS}/{order['id']}/cancel"

    cancelled = await client.post(url, headers=ada.headers)

    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["cancelled_at"] is not None
    assert (body["id"], body["total"], body["items"]) == (order["id"], "8.75", order["items"])
    assert await stock_of(client, ada, pen) == 10
    assert await stock_of(client, ada, ink) == 5

    again = await client.post(url, headers=ada.headers)

    assert_error(again, 409, "already_cancelled")
    assert await stock_of(client, ada, pen) == 10
    assert await stock_of(client, ada, ink) == 5
    stored = (await client.get(f"{ORDERS}/{order['id']}", headers=ada.headers)).json()
    assert stored["status"] == "cancelled"
    assert stored["cancelled_at"] == body["cancelled_at"]


async def test_two_racing_cancels_put_the_stock_back_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    order = await place(client, ada, (pen, 4))
    url = f"{ORDERS}/{order['id']}/cancel"

    first, second = await asyncio.gather(
        client.post(url, headers=ada.headers), client.post(url, headers=ada.headers)
    )

    assert sorted([first.status_code, second.status_code]) == [200, 409], (
        first.text,
        second.text,
    )
    refused = first if first.status_code == 409 else second
    assert refused.json()["code"] == "already_cancelled"
    assert await stock_of(client, ada, pen) == 10


async def test_stock_put_back_by_a_cancel_can_be_ordered_again(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 2)
    order = await place(client, ada, (pen, 2))
    assert_error(
        await client.post(ORDERS, json=lines((pen, 1)), headers=ada.headers),
        409,
        "insufficient_stock",
    )

    await client.post(f"{ORDERS}/{order['id']}/cancel", headers=ada.headers)

    await place(client, ada, (pen, 2))
    assert await stock_of(client, ada, pen) == 0


# --- someone else's orders -------------------------------------------------------------------


async def test_another_users_order_is_not_found_and_cannot_be_cancelled(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    order = await place(client, ada, (pen, 3))

    read = await client.get(f"{ORDERS}/{order['id']}", headers=bob.headers)
    cancelled = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=bob.headers)

    assert_error(read, 404, "not_found")
    assert_error(cancelled, 404, "not_found")
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=ada.headers)).json() == order
    assert await stock_of(client, ada, pen) == 7
    assert await order_ids(client, bob) == []


async def test_the_orders_api_needs_credentials(client: httpx.AsyncClient, app: FastAPI) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    order = await place(client, ada, (pen, 1))

    for response in (
        await client.get(ORDERS),
        await client.post(ORDERS, json=lines((pen, 1))),
        await client.get(f"{ORDERS}/{order['id']}"),
        await client.post(f"{ORDERS}/{order['id']}/cancel"),
    ):
        assert_error(response, 401, "not_authenticated")
    assert await stock_of(client, ada, pen) == 9


async def test_a_user_whose_roles_were_taken_away_cannot_order(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)
    order = await place(client, ada, (pen, 1))
    emptied = await client.patch(f"{API}/users/{ada.id}", json={"roles": []}, headers=boss.headers)
    assert emptied.status_code == 200, emptied.text

    for response in (
        await client.get(ORDERS, headers=ada.headers),
        await client.post(ORDERS, json=lines((pen, 1)), headers=ada.headers),
        await client.get(f"{ORDERS}/{order['id']}", headers=ada.headers),
        await client.post(f"{ORDERS}/{order['id']}/cancel", headers=ada.headers),
    ):
        assert_error(response, 403, "permission_denied")
    assert await stock_of(client, ada, pen) == 9


# --- lists and pages -------------------------------------------------------------------------


async def test_the_list_holds_only_the_callers_orders_newest_first_in_pages(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    pen = await new_product(client, boss, "PEN-1", "0.50", 100)
    placed = [(await place(client, ada, (pen, n)))["id"] for n in range(1, 13)]
    await place(client, bob, (pen, 1))

    seen: list[dict[str, Any]] = []
    sizes: list[int] = []
    params: dict[str, str | int] = {"limit": 5}
    while True:
        response = await client.get(ORDERS, params=params, headers=ada.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        sizes.append(len(body["items"]))
        seen += body["items"]
        if body["next_cursor"] is None:
            break
        params = {"limit": 5, "cursor": body["next_cursor"]}
        assert len(sizes) < 50, "pagination does not end"

    assert sizes == [5, 5, 2]
    assert [order["id"] for order in seen] == list(reversed(placed))
    assert seen[0]["total"] == "6.00"  # the newest: 12 x 0.50
    assert seen[-1]["total"] == "0.50"
    assert {order["status"] for order in seen} == {"placed"}
    assert "items" not in seen[0]


async def test_a_cancelled_order_stays_in_the_list_as_cancelled(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "0.50", 100)
    first = await place(client, ada, (pen, 1))
    second = await place(client, ada, (pen, 2))
    await client.post(f"{ORDERS}/{first['id']}/cancel", headers=ada.headers)

    listed = (await client.get(ORDERS, headers=ada.headers)).json()["items"]

    assert [(order["id"], order["status"]) for order in listed] == [
        (second["id"], "placed"),
        (first["id"], "cancelled"),
    ]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}])
async def test_an_order_page_size_out_of_range_is_refused(
    client: httpx.AsyncClient, params: dict[str, int]
) -> None:
    ada = await signed_up(client, "ada@example.com")

    assert_error(
        await client.get(ORDERS, params=params, headers=ada.headers), 422, "validation_error"
    )


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJvbmUiXQ"])
async def test_an_order_cursor_the_api_did_not_make_is_a_bad_request(
    client: httpx.AsyncClient, cursor: str
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.get(ORDERS, params={"cursor": cursor}, headers=ada.headers)

    assert_error(response, 400, "invalid_cursor")


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "items",
    [
        pytest.param([], id="no items"),
        pytest.param([{"quantity": 0}], id="quantity 0"),
        pytest.param([{"quantity": -1}], id="negative quantity"),
        pytest.param([{"quantity": 10_001}], id="quantity 10001"),
        pytest.param([{"quantity": 1}] * 101, id="101 items"),
        pytest.param([{"quantity": "lots"}], id="quantity not a number"),
        pytest.param([{"quantity": 1, "unit_price": "0.01"}], id="a price of one's own"),
        pytest.param([{"product_id": 0, "quantity": 1}], id="product id 0"),
    ],
)
async def test_an_invalid_order_is_refused_and_takes_nothing(
    client: httpx.AsyncClient, app: FastAPI, items: list[dict[str, Any]]
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 10)

    response = await client.post(
        ORDERS,
        json={"items": [{"product_id": pen["id"], **item} for item in items]},
        headers=ada.headers,
    )

    assert_error(response, 422, "validation_error")
    assert await stock_of(client, ada, pen) == 10
    assert await order_ids(client, ada) == []


async def test_an_order_of_100_lines_and_10000_pieces_is_accepted(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "0.01", 20_000)
    bulk = await new_product(client, boss, "BULK-1", "0.01", 10_000)

    many_lines = await place(client, ada, *[(pen, 1)] * 100)
    one_big_line = await place(client, ada, (bulk, 10_000))

    assert many_lines["total"] == "1.00"
    assert one_big_line["total"] == "100.00"
    assert await stock_of(client, ada, pen) == 19_900
    assert await stock_of(client, ada, bulk) == 0


async def test_an_order_without_an_items_field_is_refused(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    assert_error(await client.post(ORDERS, json={}, headers=ada.headers), 422, "validation_error")


async def test_an_order_whose_total_does_not_fit_is_refused_and_takes_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    gold = await new_product(client, boss, "GOLD-1", "100000000.00", 10_000)

    response = await client.post(ORDERS, json=lines((gold, 10_000)), headers=ada.headers)

    # 10,000 x 100,000,000.00 needs 15 digits; the total column holds 12.
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["code"], str)
    assert await stock_of(client, ada, gold) == 10_000
    assert await order_ids(client, ada) == []
