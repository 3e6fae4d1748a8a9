"""The owned Faust transport without a broker: the version pin, the private names it relies on,
the registration, and the fast path's delivery rule on the real consumer object."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

import faust
import pytest
from creditbus.streams import transport
from faust.transport.drivers import by_url
from faust.types import Message

ROOT = Path(__file__).resolve().parents[2]


def test_faust_streaming_is_the_pinned_release() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"]
    assert f"faust-streaming=={transport.FAUST_VERSION}" in dependencies
    assert faust.__version__ == transport.FAUST_VERSION, (
        f"faust-streaming {faust.__version__} is installed but streams/transport.py was "
        f"written against {transport.FAUST_VERSION}: review the module against the new "
        "release (docs/faust-transport.md, 'Upgrading Faust') before moving the pin")


def test_every_private_faust_name_the_module_relies_on_is_unchanged() -> None:
    problems = transport.private_name_problems()
    assert not problems, (
        "streams/transport.py relies on Faust internals that changed:\n  "
        + "\n  ".join(problems)
        + "\nReview the module against the new Faust source (docs/faust-transport.md, "
        "'Upgrading Faust'), then update its pins.")


def test_the_scheme_selects_the_owned_transport() -> None:
    assert by_url(f"{transport.SCHEME}://127.0.0.1:9092") is transport.Transport
    assert issubclass(transport.Transport.Consumer, transport.Consumer)


def test_the_transport_refuses_an_app_without_the_owned_recovery() -> None:
    async def build() -> None:
        app = faust.App("refused", broker=f"{transport.SCHEME}://127.0.0.1:9")
        with pytest.raises(faust.exceptions.ImproperlyConfigured, match="TableManager"):
            app.consumer  # noqa: B018 - creating it is the point

    asyncio.run(build())


def test_the_owned_app_recovers_with_the_owned_recovery() -> None:
    async def build() -> tuple[type, type]:
        app = faust.App("owned", broker=f"{transport.SCHEME}://127.0.0.1:9",
                        TableManager=transport.TableManager)
        return type(app.tables.recovery), type(app.consumer)

    assert asyncio.run(build()) == (transport.Recovery, transport.Consumer)


# --- the fast path -----------------------------------------------------------------------------


def message(offset: int = 0) -> Message:
    return Message("t", 0, offset, 0.0, 0, [], b"k", b"v", None)


async def with_consumer(scenario: Any) -> Any:
    app = faust.App("fast", broker=f"{transport.SCHEME}://127.0.0.1:9",
                    TableManager=transport.TableManager)
    consumer = app.consumer
    consumer.resume_flow()
    return await scenario(consumer)


def test_a_callback_that_never_waits_runs_inline_in_the_fetch_task() -> None:
    async def scenario(consumer: transport.Consumer) -> tuple[bool, bool, int]:
        ran_in: list[asyncio.Task | None] = []

        async def callback(_message: Message) -> None:
            ran_in.append(asyncio.current_task())

        tasks_before = len(asyncio.all_tasks())
        delivered = await consumer.deliver(callback, message())
        return delivered, ran_in == [asyncio.current_task()], \
            len(asyncio.all_tasks()) - tasks_before

    assert asyncio.run(with_consumer(scenario)) == (True, True, 0)


def test_a_callback_that_waits_completes_once_its_wait_is_over() -> None:
    async def scenario(consumer: transport.Consumer) -> tuple[bool, list[str]]:
        steps: list[str] = []
        gate = asyncio.Event()

        async def callback(_message: Message) -> None:
            steps.append("before")
            await gate.wait()
            await asyncio.sleep(0)  # a bare yield as well as a future
            steps.append("after")

        asyncio.get_running_loop().call_later(0.01, gate.set)
        return await consumer.deliver(callback, message()), steps

    assert asyncio.run(with_consumer(scenario)) == (True, ["before", "after"])


def test_a_suspension_during_a_waiting_callback_stops_the_delivery() -> None:
    async def scenario(consumer: transport.Consumer) -> tuple[bool, list[str]]:
        steps: list[str] = []

        async def callback(_message: Message) -> None:
            steps.append("before")
            try:
                await asyncio.Event().wait()  # e.g. a full stream buffer
                steps.append("delivered")
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise

        asyncio.get_running_loop().call_later(0.01, consumer.stop_flow)
        delivered = await consumer.deliver(callback, message())
        await asyncio.sleep(0)
        return delivered, steps

    assert asyncio.run(with_consumer(scenario)) == (False, ["before", "cancelled"])


def test_a_callback_returning_a_future_is_awaited_as_faust_does() -> None:
    async def scenario(consumer: transport.Consumer) -> bool:
        loop = asyncio.get_running_loop()

        def callback(_message: Message) -> asyncio.Future[None]:
            done: asyncio.Future[None] = loop.create_future()
            loop.call_later(0.01, done.set_result, None)
            return done

        return await consumer.deliver(callback, message())

    assert asyncio.run(with_consumer(scenario)) is True


def test_nothing_is_delivered_while_the_flow_is_suspended() -> None:
    async def scenario(consumer: transport.Consumer) -> tuple[bool, int]:
        calls: list[Message] = []

        async def callback(msg: Message) -> None:
            calls.append(msg)

        consumer.stop_flow()
        return await consumer.deliver(callback, message()), len(calls)

    assert asyncio.run(with_consumer(scenario)) == (False, 0)


def test_a_callback_error_reaches_the_fetch_loop_on_both_paths() -> None:
    async def scenario(consumer: transport.Consumer) -> list[str]:
        async def fails_at_once(_message: Message) -> None:
            raise ValueError("at once")

        async def fails_later(_message: Message) -> None:
            await asyncio.sleep(0.001)
            raise ValueError("later")

        errors = []
        for callback in (fails_at_once, fails_later):
            with pytest.raises(ValueError) as caught:
                await consumer.deliver(callback, message())
            errors.append(str(caught.value))
        return errors

    assert asyncio.run(with_consumer(scenario)) == ["at once", "later"]


def test_a_paused_partition_is_not_resumed_by_its_buffer_draining() -> None:
    async def scenario(consumer: transport.Consumer) -> tuple[bool, bool]:
        tp = faust.types.TP("t", 0)
        consumer.resume_partitions({tp})
        consumer.on_buffer_full(tp)  # the stream buffer filled up
        consumer.pause_partitions({tp})  # a rebalance pauses the partition
        consumer.on_buffer_drop(tp)  # the buffer drains (or is cleared) meanwhile
        paused_held = not consumer.is_fetching(tp)
        consumer.resume_partitions({tp})
        return paused_held, consumer.is_fetching(tp)

    assert asyncio.run(with_consumer(scenario)) == (True, True)
