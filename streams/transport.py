"""The project's own Faust transport: faust-streaming's aiokafka driver, fixed where we need it.

Select it with the `creditbus://` broker scheme and `TableManager=TableManager` (both set by
`creditbus.streams.app.create_app`). It changes four things of faust-streaming 0.15.3
(docs/faust-transport.md; the same changes as `docs/faust-upstream.patch`):

1. **Fast path.** Faust's consumer awaits `wait_first(callback(message), suspend_flow.wait())`
   for every record, four asyncio tasks per record. Here the callback is run directly; only if
   it has to wait (flow control, a full stream buffer, the producer buffer) is the rest of it
   raced against a flow suspension as before, so a suspension still stops delivery.
2. **Recovery race.** Faust resumed the stream partitions *before* seeking them to their
   committed offsets and cleared the stream buffers *after*; records fetched meanwhile moved
   the read offset past records that the clear then dropped, which were never delivered again
   nor acked, so the committed offset stopped at the hole (faust-streaming #596). Here the
   seek comes first, with the stream partitions still paused; then, without awaiting anything,
   the buffers are cleared and the partitions and the flow resumed, so the first stream record
   delivered after a rebalance is the one at the committed offset. A paused partition can no
   longer be resumed by its stream buffer draining (`on_buffer_drop`).
3. **Records of a partition paused during a fetch.** Faust fetched for its live set of active
   partitions (all of them when a pause emptied it) and dropped the records of partitions
   paused meanwhile after aiokafka had counted them consumed. Here the fetch asks for a copy
   of the set and such records are put back (the consumer seeks back to them).
4. **Public hooks** for what the agents need from Faust's private state: `processing(event)`
   and `committed_offset(app, tp)`.

Nothing else in the project may touch Faust's private names; `private_name_problems()` lists
the ones this module relies on that a Faust upgrade removed or changed
(tests/unit/test_transport.py runs it).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import importlib
import inspect
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import faust
from aiokafka.errors import IllegalStateError
from faust import streams as faust_streams
from faust.exceptions import ImproperlyConfigured
from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT, EventT, Message
from mode import ServiceT

FAUST_VERSION = "0.15.3"
"""The faust-streaming release this module was written against (pinned in pyproject.toml)."""

SCHEME = "creditbus"
"""Broker URL scheme of this transport: `creditbus://host:port`."""

_REGISTERED_AS = "creditbus.streams.transport:Transport"

# --- public hooks ----------------------------------------------------------------------------


@contextmanager
def processing(event: EventT) -> Iterator[EventT]:
    """Make `event` Faust's current event in this task for the duration of the block.

    Table writes (`table[key] = value`) go to the store and changelog partition of the current
    event, so inside the block they follow `event`'s partition. Only this task's context
    variable is set (not `Stream.current_event`), so it is safe while the stream fills the next
    batch in another task.
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield event
    finally:
        faust_streams._current_event.reset(token)


def committed_offset(app: AppT, tp: TP) -> int | None:
    """The offset the app's consumer has committed on `tp` (the next one to read), if any."""
    committed = cast(faust_consumer.Consumer, app.consumer)._committed_offset
    return committed.get(TP(tp.topic, tp.partition))


# --- the consumer ----------------------------------------------------------------------------


class _Continue:
    """Resume a coroutine that already ran up to its first suspension, as `yield from` would.

    The fast path runs the callback coroutine's first step itself; when that step blocks, this
    awaitable hands the rest to a task without running the first step twice.
    """

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Any, pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task: pass it on
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the fast path and a pause that holds."""

    async def deliver(self, callback: Callable[[Message], Awaitable[None]],
                      message: Message) -> bool:
        """Hand `message` to `callback`; False if a flow suspension stopped it first.

        Faust's rule is kept: while the callback waits (flow control, a full buffer), a flow
        suspension interrupts it and the record is not delivered. A callback that never waits,
        the usual case, costs no task at all.
        """
        if self.suspend_flow.is_set():
            return False
        coro = callback(message)
        if not inspect.iscoroutine(coro):  # another kind of awaitable: Faust's own way
            result = await self.wait_first(coro, self.suspend_flow.wait())
            return coro in result.done
        try:
            pending = coro.send(None)
        except StopIteration:
            return True
        rest = _Continue(coro, pending)
        result = await self.wait_first(rest, self.suspend_flow.wait())
        return rest in result.done

    def is_fetching(self, tp: TP) -> bool:
        """Whether the fetcher asks for `tp`'s records now (resumed, not paused)."""
        return TP(tp.topic, tp.partition) in self._get_active_partitions()

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        """Pause fetching; a paused partition stays paused until `resume_partitions`.

        Faust re-activates a partition whose stream buffer drained below its low mark
        (`on_buffer_drop`) even while a rebalance keeps it paused; forgetting the buffered
        state on pause closes that way around the pause.
        """
        tpset = faust_consumer.ensure_TPset(tps)
        super().pause_partitions(tpset)
        self._buffered_partitions.difference_update(tpset)

    async def _getmany(self, active_partitions: set[TP] | None,
                       timeout: float) -> Mapping[TP, list[Any]]:
        """Fetch for the partitions active now; give back what a pause left undelivered.

        Faust handed its live set of active partitions to the consumer thread: a pause while
        the fetch waited could empty it, and aiokafka returns the records of every partition
        for an empty set. Faust then dropped the records of inactive partitions after aiokafka
        had counted them consumed; unless a seek followed, they were never delivered. Here the
        fetch asks for a copy of the set, and records of a partition paused meanwhile are put
        back (`_rewind`) instead of dropped.
        """
        wanted = None if active_partitions is None else set(active_partitions)
        records = dict(await self._thread.getmany(wanted, timeout))
        if active_partitions is None:
            return records
        paused = {tp: records.pop(tp) for tp in list(records)
                  if tp not in active_partitions and tp not in self._buffered_partitions}
        if paused:
            await self._thread.call_thread(self._rewind, paused)
        return records

    async def _rewind(self, undelivered: Mapping[TP, list[Any]]) -> None:
        """In the consumer thread: seek back to undelivered records unless a seek moved on."""
        client = self._thread._ensure_consumer()
        for tp, records in undelivered.items():
            try:
                position = await client.position(tp)
            except IllegalStateError:
                continue  # revoked meanwhile: its next owner starts from the commit
            if position == records[-1].offset + 1:
                client.seek(tp, records[0].offset)
                self.log.info("Put back %d fetched records of paused partition %s:%d",
                              len(records), tp.topic, tp.partition)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - loop
        """Faust's fetch loop, with `deliver` instead of one `wait_first` per record."""
        callback = self.callback
        deliver = self.deliver
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Any, fetcher)._stopped.is_set
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(faust_consumer.CONSUMER_FETCHING)
                ait = cast(Any, self.getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    await self._drain_batch(ait, callback, deliver)
                    unset_flag(faust_consumer.CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(faust_consumer.CONSUMER_FETCHING)

    async def _drain_batch(self, ait: Any, callback: Callable[[Message], Awaitable[None]],
                           deliver: Callable[..., Awaitable[bool]]) -> None:
        """Deliver one fetched batch in order; stop at the first record a suspension stopped."""
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        since_yield = 0
        async for tp, message in ait:
            since_yield += 1
            if since_yield > 100:  # as Faust: let the loop breathe in long batches
                await asyncio.sleep(0)
                since_yield = 0
            offset = message.offset
            r_offset = read_offset[tp]
            if r_offset is not None and offset < r_offset:
                self.log.dev("DROPPED MESSAGE ROFF %r", offset)
                continue
            if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if commit_every is not None and self._n_acked >= commit_every:
                self._n_acked = 0
                await self.commit()
            if not await deliver(callback, message):
                break  # not delivered: the read offset stays where it was
            read_offset[tp] = offset


class Transport(faust_aiokafka.Transport):
    """faust-streaming's aiokafka transport with the project's consumer (`creditbus://`)."""

    Consumer = Consumer

    def create_consumer(self, callback: Callable[[Message], Awaitable[None]],
                        **kwargs: Any) -> Consumer:
        """The consumer; refused unless the app recovers its tables with `Recovery` here."""
        if not isinstance(self.app.tables, TableManager):
            raise ImproperlyConfigured(
                f"the {SCHEME}:// transport needs the app setting "
                "TableManager=creditbus.streams.transport.TableManager (its Recovery seeks "
                "the stream partitions before resuming them)")
        return cast(Consumer, super().create_consumer(callback, **kwargs))


# --- recovery --------------------------------------------------------------------------------


class Recovery(FaustRecovery):
    """Faust's table recovery, resuming the streams only after their seek."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Call when active table recovery is completed (Faust's, with `_seek_and_resume`)."""
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        done = [asyncio.ensure_future(table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]))
                for table in self.tables.values()]
        if done:
            await asyncio.wait(done)
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again app id %r param %r",
                             self.app.consumer_generation_id, generation_id)
            return
        await self._seek_and_resume()
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _resume_streams(self, generation_id: int = 0) -> None:
        """Resume the streams of an app without tables (Faust's, with `_seek_and_resume`)."""
        await self.app.on_rebalance_complete.send()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._seek_and_resume()
        self.tables.on_actives_ready()
        self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _seek_and_resume(self) -> None:
        """Seek the paused stream partitions, then clear the buffers and resume, in one step.

        While the seek runs the stream partitions stay paused, so no stream record is fetched
        from before it. Nothing awaits between the buffers' clear (`flow_control.resume`) and
        the resumption: whatever the clear drops was delivered before the seek, and the seek
        set the read offsets back so that it is fetched and delivered again.
        """
        consumer = self.app.consumer
        assignment = consumer.assignment()
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(),
                             timeout=self.app.conf.broker_request_timeout)
        else:
            self.log.info("Resuming streams with empty assignment")
        self.completed.set()
        self.log.info("Resuming flow...")
        self.app.flow_control.resume()
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        consumer.resume_flow()
        await cast(Any, self.app)._fetcher.maybe_start()


class TableManager(FaustTableManager):
    """Faust's table manager with the project's `Recovery` (app setting `TableManager`)."""

    @property
    def recovery(self) -> Recovery:
        """Recovery service used by this table manager."""
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return cast(Recovery, self._recovery)


# --- registration and the pin ----------------------------------------------------------------

TRANSPORTS.aliases.setdefault(SCHEME, _REGISTERED_AS)

REPLACED_SOURCES: dict[str, str] = {
    "faust.transport.consumer:ThreadDelegateConsumer._getmany":
        "f9d47aa9010b5ff2b874ba65f927871f3612718d8a9db00b58601554a35236c4",
    "faust.transport.consumer:Consumer._drain_messages":
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    "faust.tables.recovery:Recovery.on_recovery_completed":
        "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
    "faust.tables.recovery:Recovery._resume_streams":
        "d986a6710c1aca98f08c4c723fb3eadc5bf24576ad4eb9da3dd3eecedda2f24e",
    "faust.tables.manager:TableManager.recovery":
        "f0bf5de78b4c3d235c3554010480f407010ccb7c481c68852a985542b952df32",
}
"""SHA-256 of the source of each Faust function this module replaces. If one changed, the
upgrade may have fixed (or moved) what the replacement does: review the replacement against
the new source before moving the pin."""

PRIVATE_SIGNATURES: dict[str, str] = {
    "faust.transport.consumer:Consumer._add_gap": "(self, tp, offset_from, offset_to)",
    "faust.transport.consumer:Consumer.perform_seek": "(self)",
    "faust.transport.consumer:Consumer.pause_partitions": "(self, tps)",
    "faust.transport.consumer:Consumer._get_active_partitions": "(self)",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.getmany":
        "(self, active_partitions, timeout)",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._ensure_consumer": "(self)",
    "mode.threads:QueueServiceThread.call_thread": "(self, fun, *args, **kwargs)",
    "faust.tables.recovery:Recovery._wait": "(self, coro, timeout=None)",
    "faust.tables.recovery:Recovery._set_recovery_ended": "(self)",
    "faust.tables.recovery:Recovery._is_changelog_tp": "(self, tp)",
}
"""Private (or replaced-around) callables this module calls, with their parameters."""

PRIVATE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "faust.transport.consumer:Consumer.__init__": (
        "self._committed_offset = defaultdict(lambda: None)",
        "self._read_offset = defaultdict(lambda: None)",
        "self._buffered_partitions = set()",
        "self._commit_every = self.app.conf.broker_commit_every",
    ),
    "faust.transport.consumer:Consumer.ack": ("self._n_acked += 1",),
    "faust.transport.consumer:ThreadDelegateConsumer.__init__": (
        "self._thread = self._new_consumer_thread()",),
    "faust.transport.consumer:Consumer.getmany": (
        "tp in active_partitions",
        "or tp in self._buffered_partitions",
    ),
    "faust.streams:current_event": ("eventref = _current_event.get(None)",),
    "faust.tables.manager:TableManager.recovery": ("self._recovery = Recovery(",),
    "faust.app.base:App._stop_fetcher": ("await self._fetcher.stop()",),
    "faust.transport.consumer:Fetcher._fetcher": ("await consumer._drain_messages(self)",),
    "mode.services:Service.should_stop": ("self._stopped.is_set()",),
}
"""Private attributes this module reads or writes, by a line of Faust (or mode) that shows
them with the meaning assumed here."""


def _resolve(path: str) -> Any:
    module_name, qualname = path.split(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, property):
        return obj.fget
    return getattr(obj, "fun", obj)  # a mode ServiceTask wraps its function


def _parameters(path: str) -> str:
    """`(name, name=default, ...)` of a callable, without annotations."""
    params = inspect.signature(_resolve(path)).parameters.values()
    return "(" + ", ".join(str(p.replace(annotation=p.empty)) for p in params) + ")"


def source_digest(path: str) -> str:
    """SHA-256 of the source of the function at `module:Qual.name`."""
    return hashlib.sha256(inspect.getsource(_resolve(path)).encode()).hexdigest()


def private_name_problems() -> list[str]:
    """What a Faust upgrade changed of what this module relies on (empty when nothing)."""
    problems = []
    if faust.__version__ != FAUST_VERSION:
        problems.append(f"faust-streaming is {faust.__version__}, this module was written "
                        f"against {FAUST_VERSION}")
    if not isinstance(getattr(faust_streams, "_current_event", None), contextvars.ContextVar):
        problems.append("faust.streams._current_event is no longer a ContextVar")
    problems += _check(REPLACED_SOURCES, source_digest,
                       "source changed: sha256 is now")
    problems += _check(PRIVATE_SIGNATURES, _parameters,
                       "signature is now")
    for path, lines in PRIVATE_ATTRIBUTES.items():
        try:
            source = inspect.getsource(_resolve(path))
        except (AttributeError, ImportError, OSError, TypeError) as exc:
            problems.append(f"{path}: gone ({exc})")
            continue
        problems += [f"{path} no longer has `{line}`" for line in lines if line not in source]
    return problems


def _check(expected: dict[str, str], actual: Callable[[str], str], what: str) -> list[str]:
    problems = []
    for path, value in expected.items():
        try:
            found = actual(path)
        except (AttributeError, ImportError, OSError, TypeError, ValueError) as exc:
            problems.append(f"{path}: gone ({exc})")
            continue
        if found != value:
            problems.append(f"{path}: {what} {found}")
    return problems
