"""The product catalogue: everyone signed in reads it, `products:write` changes it, and
prices are exact decimals on every backend."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.accounts import API, Account, an_admin, assert_error, signed_up

PRODUCTS = f"{API}/products"
ORDERS = f"{API}/orders"


async def new_product(
    client: httpx.AsyncClient,
    admin: Account,
    sku: str,
    price: str | float = "1.00",
    stock: int = 10,
    name: str | None = None,
) -> dict[str, Any]:
    """A product made by `admin`; fails the test if it cannot be created."""
    body = {"sku": sku, "name": name or f"Product {sku}", "price": price, "stock": stock}
    response = await client.post(PRODUCTS, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def product_count(client: httpx.AsyncClient, reader: Account) -> int:
    response = await client.get(PRODUCTS, params={"limit": 100}, headers=reader.headers)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


# --- reading the catalogue -------------------------------------------------------------------


async def test_a_member_lists_and_reads_products(client: httpx.AsyncClient, app: FastAPI) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 7, "Pen")
    ink = await new_product(client, boss, "INK-1", "4.25", 3, "Ink")

    listed = await client.get(PRODUCTS, headers=ada.headers)
    read = await client.get(f"{PRODUCTS}/{pen['id']}", headers=ada.headers)

    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [pen, ink], "next_cursor": None}
    assert read.status_code == 200, read.text
    assert read.json() == pen
    assert (pen["sku"], pen["name"], pen["price"], pen["stock"]) == ("PEN-1", "Pen", "1.50", 7)


async def test_the_catalogue_needs_credentials(client: httpx.AsyncClient, app: FastAPI) -> None:
    boss = await an_admin(client, app)
    pen = await new_product(client, boss, "PEN-1")

    for response in (
        await client.get(PRODUCTS),
        await client.get(f"{PRODUCTS}/{pen['id']}"),
        await client.post(PRODUCTS, json={"sku": "X", "name": "X", "price": "1.00"}),
        await client.patch(f"{PRODUCTS}/{pen['id']}", json={"stock": 0}),
        await client.delete(f"{PRODUCTS}/{pen['id']}"),
    ):
        assert_error(response, 401, "not_authenticated")


async def test_a_product_that_does_not_exist_is_not_found(client: httpx.AsyncClient) -> None:
    ada = await signed_up(client, "ada@example.com")

    assert_error(await client.get(f"{PRODUCTS}/999999", headers=ada.headers), 404, "not_found")


# --- changing the catalogue ------------------------------------------------------------------


async def test_a_member_cannot_change_the_catalogue(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 7)
    url = f"{PRODUCTS}/{pen['id']}"

    created = await client.post(
        PRODUCTS, json={"sku": "MINE", "name": "Mine", "price": "0.01"}, headers=ada.headers
    )
    changed = await client.patch(url, json={"price": "0.01", "stock": 999}, headers=ada.headers)
    deleted = await client.delete(url, headers=ada.headers)

    for response in (created, changed, deleted):
        assert_error(response, 403, "permission_denied")
    assert (await client.get(url, headers=ada.headers)).json() == pen
    assert await product_count(client, ada) == 1


async def test_an_admin_creates_changes_and_deletes_a_product(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)

    created = await client.post(
        PRODUCTS,
        json={"sku": " PEN-1 ", "name": " Pen ", "price": "1.50", "stock": 7},
        headers=boss.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["sku"] == "PEN-1"
    assert created.json()["name"] == "Pen"
    url = f"{PRODUCTS}/{created.json()['id']}"

    changed = await client.patch(
        url, json={"name": "Fountain pen", "price": "12.00", "stock": 2}, headers=boss.headers
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["price"], changed.json()["stock"]) == (
        "Fountain pen",
        "12.00",
        2,
    )
    assert (await client.get(url, headers=boss.headers)).json() == changed.json()

    deleted = await client.delete(url, headers=boss.headers)
    assert deleted.status_code == 204
    assert_error(await client.get(url, headers=boss.headers), 404, "not_found")


async def test_a_product_created_without_stock_has_none(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)

    response = await client.post(
        PRODUCTS, json={"sku": "PEN-1", "name": "Pen", "price": "1.50"}, headers=boss.headers
    )

    assert response.status_code == 201, response.text
    assert response.json()["stock"] == 0


async def test_nulls_in_a_change_leave_the_product_as_it_was(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    pen = await new_product(client, boss, "PEN-1", "1.50", 7, "Pen")

    response = await client.patch(
        f"{PRODUCTS}/{pen['id']}",
        json={"name": None, "price": None, "stock": None},
        headers=boss.headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["price"], body["stock"]) == ("Pen", "1.50", 7)


async def test_changing_a_product_that_does_not_exist_is_not_found(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)

    changed = await client.patch(f"{PRODUCTS}/999999", json={"stock": 1}, headers=boss.headers)
    deleted = await client.delete(f"{PRODUCTS}/999999", headers=boss.headers)

    assert_error(changed, 404, "not_found")
    assert_error(deleted, 404, "not_found")


async def test_a_taken_sku_is_a_conflict(client: httpx.AsyncClient, app: FastAPI) -> None:
    boss = await an_admin(client, app)
    pen = await new_product(client, boss, "PEN-1", "1.50", 7, "Pen")

    response = await client.post(
        PRODUCTS, json={"sku": "PEN-1", "name": "Other pen", "price": "9.99"}, headers=boss.headers
    )

    assert_error(response, 409, "sku_taken")
    assert "PEN-1" in response.json()["detail"]
    listed = (await client.get(PRODUCTS, headers=boss.headers)).json()["items"]
    assert listed == [pen]


# --- prices are exact decimals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "read_back"),
    [
        pytest.param("0.10", "0.10", id="ten cents"),
        pytest.param("19.99", "19.99", id="19.99"),
        pytest.param("1234567890.12", "1234567890.12", id="twelve digits"),
        pytest.param("0.01", "0.01", id="one cent"),
        pytest.param("0", "0.00", id="free"),
        pytest.param("5", "5.00", id="whole number as text"),
        pytest.param("2.5", "2.50", id="one decimal place"),
        pytest.param(19.99, "19.99", id="JSON number 19.99"),
        pytest.param(0.1, "0.10", id="JSON number 0.1"),
        pytest.param(3, "3.00", id="JSON integer"),
    ],
)
async def test_a_price_reads_back_exactly_as_a_two_decimal_string(
    client: httpx.AsyncClient, app: FastAPI, sent: str | float, read_back: str
) -> None:
    boss = await an_admin(client, app)

    created = await new_product(client, boss, "PEN-1", sent)

    assert created["price"] == read_back
    stored = (await client.get(f"{PRODUCTS}/{created['id']}", headers=boss.headers)).json()
    assert stored["price"] == read_back
    listed = (await client.get(PRODUCTS, headers=boss.headers)).json()["items"]
    assert [product["price"] for product in listed] == [read_back]


async def test_a_changed_price_reads_back_exactly(client: httpx.AsyncClient, app: FastAPI) -> None:
    boss = await an_admin(client, app)
    pen = await new_product(client, boss, "PEN-1", "1.00")

    response = await client.patch(
        f"{PRODUCTS}/{pen['id']}", json={"price": 0.3}, headers=boss.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["price"] == "0.30"
    stored = (await client.get(f"{PRODUCTS}/{pen['id']}", headers=boss.headers)).json()
    assert stored["price"] == "0.30"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"price": "1.999"}, id="three decimal places"),
        pytest.param({"price": 1.999}, id="three decimal places as a number"),
        pytest.param({"price": "-0.01"}, id="negative price"),
        pytest.param({"price": "12345678901.00"}, id="too many digits"),
        pytest.param({"price": "ten"}, id="not a number"),
        pytest.param({"price": "NaN"}, id="NaN"),
        pytest.param({"price": "Infinity"}, id="infinity"),
        pytest.param({"stock": -1}, id="negative stock"),
        pytest.param({"stock": 1.5}, id="fractional stock"),
        pytest.param({"sku": ""}, id="empty sku"),
        pytest.param({"sku": "has space"}, id="sku with a space"),
        pytest.param({"sku": "x" * 65}, id="65-character sku"),
        pytest.param({"name": ""}, id="empty name"),
        pytest.param({"colour": "red"}, id="unknown field"),
    ],
)
async def test_an_invalid_product_is_refused(
    client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any]
) -> None:
    boss = await an_admin(client, app)
    valid = {"sku": "PEN-1", "name": "Pen", "price": "1.50", "stock": 1}

    response = await client.post(PRODUCTS, json={**valid, **body}, headers=boss.headers)

    assert_error(response, 422, "validation_error")
    assert await product_count(client, boss) == 0


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"price": "1.999"}, id="three decimal places"),
        pytest.param({"price": "-1.00"}, id="negative price"),
        pytest.param({"stock": -1}, id="negative stock"),
        pytest.param({"sku": "NEW-SKU"}, id="the sku"),
    ],
)
async def test_an_invalid_change_is_refused_and_the_product_stays_unchanged(
    client: httpx.AsyncClient, app: FastAPI, changes: dict[str, Any]
) -> None:
    boss = await an_admin(client, app)
    pen = await new_product(client, boss, "PEN-1", "1.50", 7)
    url = f"{PRODUCTS}/{pen['id']}"

    response = await client.patch(url, json=changes, headers=boss.headers)

    assert_error(response, 422, "validation_error")
    assert (await client.get(url, headers=boss.headers)).json() == pen


async def test_three_items_at_ten_cents_total_exactly_thirty_cents(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    dimes = [await new_product(client, boss, f"DIME-{n}", "0.10") for n in range(3)]
    many = await new_product(client, boss, "DIME-X", "0.10")

    apart = await client.post(
        ORDERS,
        json={"items": [{"product_id": dime["id"], "quantity": 1} for dime in dimes]},
        headers=ada.headers,
    )
    together = await client.post(
        ORDERS, json={"items": [{"product_id": many["id"], "quantity": 3}]}, headers=ada.headers
    )

    assert apart.status_code == 201, apart.text
    assert apart.json()["total"] == "0.30"
    assert [item["unit_price"] for item in apart.json()["items"]] == ["0.10"] * 3
    assert together.status_code == 201, together.text
    assert together.json()["total"] == "0.30"
    stored = (await client.get(f"{ORDERS}/{apart.json()['id']}", headers=ada.headers)).json()
    assert stored["total"] == "0.30"


async def test_a_large_order_total_keeps_every_cent(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pricey = await new_product(client, boss, "GOLD", "99999.99", 100)

    response = await client.post(
        ORDERS, json={"items": [{"product_id": pricey["id"], "quantity": 99}]}, headers=ada.headers
    )

    assert response.status_code == 201, response.text
    assert response.json()["total"] == "9899999.01"
    stored = (await client.get(f"{ORDERS}/{response.json()['id']}", headers=ada.headers)).json()
    assert stored["total"] == "9899999.01"


# --- products that were ordered --------------------------------------------------------------


async def test_a_product_that_was_ordered_cannot_be_deleted(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 7)
    ordered = await client.post(
        ORDERS, json={"items": [{"product_id": pen["id"], "quantity": 2}]}, headers=ada.headers
    )
    assert ordered.status_code == 201, ordered.text
    url = f"{PRODUCTS}/{pen['id']}"

    response = await client.delete(url, headers=boss.headers)

    assert_error(response, 409, "product_in_use")
    still = await client.get(url, headers=boss.headers)
    assert still.status_code == 200
    assert still.json()["stock"] == 5
    order = await client.get(f"{ORDERS}/{ordered.json()['id']}", headers=ada.headers)
    assert order.json() == ordered.json()


async def test_a_product_no_longer_in_use_after_a_cancel_still_cannot_be_deleted(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    pen = await new_product(client, boss, "PEN-1", "1.50", 7)
    ordered = await client.post(
        ORDERS, json={"items": [{"product_id": pen["id"], "quantity": 2}]}, headers=ada.headers
    )
    cancelled = await client.post(f"{ORDERS}/{ordered.json()['id']}/cancel", headers=ada.headers)
    assert cancelled.status_code == 200, cancelled.text

    response = await client.delete(f"{PRODUCTS}/{pen['id']}", headers=boss.headers)

    # The cancelled order still names the product, so the product stays.
    assert_error(response, 409, "product_in_use")
    assert (await client.get(f"{PRODUCTS}/{pen['id']}", headers=boss.headers)).json()["stock"] == 7


# --- pages -----------------------------------------------------------------------------------


async def test_pages_of_products_hold_each_product_exactly_once_in_order(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    created = [(await new_product(client, boss, f"SKU-{n:02}"))["id"] for n in range(13)]

    seen: list[int] = []
    sizes: list[int] = []
    params: dict[str, str | int] = {"limit": 4}
    while True:
        response = await client.get(PRODUCTS, params=params, headers=ada.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        sizes.append(len(body["items"]))
        seen += [product["id"] for product in body["items"]]
        if body["next_cursor"] is None:
            break
        params = {"limit": 4, "cursor": body["next_cursor"]}
        assert len(sizes) < 50, "pagination does not end"

    assert sizes == [4, 4, 4, 1]
    assert seen == created


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": 0}, id="limit 0"),
        pytest.param({"limit": 101}, id="limit 101"),
    ],
)
async def test_a_product_page_size_out_of_range_is_refused(
    client: httpx.AsyncClient, params: dict[str, int]
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.get(PRODUCTS, params=params, headers=ada.headers)

    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJwZW4iXQ", "WzAsMV0"])
async def test_a_product_cursor_the_api_did_not_make_is_a_bad_request(
    client: httpx.AsyncClient, cursor: str
) -> None:
    ada = await signed_up(client, "ada@example.com")

    response = await client.get(PRODUCTS, params={"cursor": cursor}, headers=ada.headers)

    assert_error(response, 400, "invalid_cursor")
